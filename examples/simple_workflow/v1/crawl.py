"""The simple workflow's `crawl` machine step: pick a random image from a web page.

Input: ``project_data["url"]``, the page to crawl. When a project gives no URL, the step crawls Orchestra's
own demo gallery (``<ORCHESTRA_URL>/orchestra/demo/gallery/``), so the demo needs no internet access.

Output (B12's shape): ``{"status": "success", "image": <absolute URL of one <img src> on the page>}``.

A failure raises (and the attempt is retried): ValueError for a URL that is not http(s) or a page
without ``<img>`` tags, ConnectionError when the page cannot be fetched.
"""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from orchestra import conf

TIMEOUT_SECONDS = 10
MAX_PAGE_BYTES = 5 * 1024 * 1024
USER_AGENT = "Orchestra-simple-workflow-crawler/1.0"


class _ImageFinder(HTMLParser):
    """Collects every ``<img src>`` and the page's ``<base href>``, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and (src := (values.get("src") or "").strip()):
            self.sources.append(src)
        elif tag == "base" and self.base is None and (href := (values.get("href") or "").strip()):
            self.base = href


def default_url() -> str:
    """The demo gallery served by Orchestra itself."""
    return str(conf.get("ORCHESTRA_URL")).rstrip("/") + "/orchestra/demo/gallery/"


def find_images(html: str, page_url: str) -> list[str]:
    """Absolute URLs of the page's ``<img src>`` tags, in document order."""
    finder = _ImageFinder()
    finder.feed(html)
    finder.close()
    base = urljoin(page_url, finder.base) if finder.base else page_url
    return [urljoin(base, src) for src in finder.sources]


def _fetch(url: str) -> tuple[str, str]:
    """The page's text and its final URL (after redirects)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*;q=0.5"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read(MAX_PAGE_BYTES)
            charset = response.headers.get_content_charset() or "utf-8"
            final_url = response.geturl()
    except urllib.error.HTTPError as error:
        raise ConnectionError(f"crawl: fetching {url} failed with HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(f"crawl: could not fetch {url}: {reason}; is the address right and reachable?") from error
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset in the Content-Type header
        text = body.decode("utf-8", errors="replace")
    return text, final_url


def crawl_page(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Fetch ``project_data["url"]`` (or the demo gallery) and return one of its images at random."""
    url = project_data.get("url") or default_url()
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"crawl: project_data['url'] must be an http(s) URL, got {url!r}")
    html, final_url = _fetch(url)
    images = find_images(html, final_url)
    if not images:
        raise ValueError(f"crawl: the page at {url} has no <img> tags; give the project a URL of a page with images")
    return {"status": "success", "image": random.choice(images)}
