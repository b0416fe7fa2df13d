"""The example workflows' code (simple_workflow, journalism_workflow) and the file store they use.

The machine steps are called the way Orchestra's executor calls them: ``fn(project_data, prerequisites,
**kwargs)`` with ``project_data["project_id"]`` set. HTTP goes to real servers on 127.0.0.1 (Django's
live server, or a throwaway ``http.server``), never to the internet.
"""

from __future__ import annotations

import io
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from journalism_workflow import load_sample_data as journalism_sample_data
from journalism_workflow.v1.adjust_photos import autoadjust_photos
from journalism_workflow.v1.documents import create_documents
from PIL import Image
from simple_workflow import load_sample_data as simple_sample_data
from simple_workflow.v1.crawl import crawl_page

from orchestra import files

# --- fixtures -----------------------------------------------------------------------------------------


# WhiteNoise warns (an error under our filterwarnings) when STATIC_ROOT does not exist, i.e. before
# `collectstatic`. Requests through the test client get an existing STATIC_ROOT from the `media` fixture;
# Django's live server is session-wide and loads its middleware once, before any per-test settings apply.
_NO_STATIC_ROOT_YET = "ignore:No directory at:UserWarning"


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """A fresh MEDIA_ROOT for the file store, so tests never see each other's files."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = str(root)
    (tmp_path / "static").mkdir()
    settings.STATIC_ROOT = str(tmp_path / "static")
    return root


@pytest.fixture
def pages() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A tiny HTTP server on 127.0.0.1: yields (base URL, {path: HTML body}) to fill in; others are 404."""
    content: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = content.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", content
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get_content_type(), response.read()


def _image_bytes(size: tuple[int, int], color: tuple[int, ...], fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=fmt)
    return out.getvalue()


# --- orchestra.files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../secret.txt", "'..'"),
        ("a/../../secret.txt", "'..'"),
        ("a/..", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/windows/win.ini", "absolute"),
        ("a\\..\\b", "backslash"),
        ("a//b.txt", "empty or '.'"),
        ("./a.txt", "empty or '.'"),
        ("a/b/", "empty or '.'"),
        ("a\x00b", "control character"),
        ("", "non-empty"),
    ],
)
def test_files_refuse_unsafe_names(media: Path, name: str, problem: str) -> None:
    for call in (
        lambda: files.save_file(name, b"x"),
        lambda: files.read_file(name),
        lambda: files.open_file(name),
        lambda: files.file_url(name),
    ):
        with pytest.raises(ValueError, match=problem):
            call()
    assert not (media.parent / "secret.txt").exists()


def test_files_refuse_unsafe_folders(media: Path) -> None:
    with pytest.raises(ValueError, match="'..'"):
        files.make_folder("../outside")
    with pytest.raises(ValueError, match="'..'"):
        files.list_folder("a/../..")
    with pytest.raises(ValueError, match="absolute"):
        files.list_folder("/tmp")
    assert not (media.parent / "outside").exists()


def test_files_save_read_overwrite_and_open(media: Path) -> None:
    assert files.save_file("notes/today.txt", b"first") == "notes/today.txt"
    assert files.read_file("notes/today.txt") == b"first"
    assert files.save_file("notes/today.txt", b"second, longer") == "notes/today.txt"
    assert files.read_file("notes/today.txt") == b"second, longer"
    assert (media / "files" / "notes" / "today.txt").read_bytes() == b"second, longer"
    assert files.list_folder("notes") == ["notes/today.txt"]  # overwritten, not saved beside
    with files.open_file("notes/today.txt") as handle:
        assert handle.read(6) == b"second"
    assert files.file_exists("notes/today.txt")
    assert not files.file_exists("notes/other.txt")
    assert not files.file_exists("notes")  # a folder is not a file
    with pytest.raises(FileNotFoundError, match="notes/other.txt"):
        files.read_file("notes/other.txt")
    with pytest.raises(FileNotFoundError):
        files.open_file("notes")


def test_files_folders(media: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make_folder"):
        files.list_folder("album")
    assert files.make_folder("album/") == "album"
    assert files.make_folder("album") == "album"  # idempotent
    assert files.list_folder("album") == []  # exists and is empty: the .keep marker is hidden
    assert (media / "files" / "album" / ".keep").exists()
    with pytest.raises(FileNotFoundError):
        files.read_file("album/.keep")
    with pytest.raises(ValueError, match="reserved"):
        files.save_file("album/.keep", b"")

    files.save_file("album/b.jpg", b"b")
    files.save_file("album/a.jpg", b"a")
    files.save_file("album/inner/c.jpg", b"c")
    assert files.list_folder("album") == ["album/a.jpg", "album/b.jpg"]  # sorted, files directly inside
    assert files.list_folder("album/inner") == ["album/inner/c.jpg"]  # exists as a prefix only
    assert files.list_folder("") == []  # the top holds only folders
    with pytest.raises(ValueError, match="is a folder"):
        files.save_file("album/inner", b"would hide c.jpg")
    assert files.read_file("album/inner/c.jpg") == b"c"


@pytest.mark.django_db(transaction=True)  # a FileResponse's close ends the request, as a server's would
def test_file_url_and_the_stored_file_view(media: Path, client: Any) -> None:
    from orchestra.services.workers import worker_create

    files.save_file("docs/my notes.txt", b"hello")  # saved outside any project's work: any signed-in worker
    url = files.file_url("docs/my notes.txt")
    assert url == "http://testserver/orchestra/files/docs/my%20notes.txt"
    path = url.removeprefix("http://testserver")
    response = client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]  # not anonymously
    worker_create(username="ann", password="pw")
    client.login(username="ann", password="pw")
    response = client.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello"
    response.close()
    assert client.get("/orchestra/files/docs/missing.txt").status_code == 404
    assert client.get("/orchestra/files/docs/../../secret").status_code == 404
    with pytest.raises(ValueError, match="at most 1000 are allowed"):
        files.save_file("x" * 1001, b"")


def test_demo_gallery_images_are_absolute_static_urls(settings: Any) -> None:
    settings.ORCHESTRA_URL = "https://orchestra.example.com/"
    images = files.demo_gallery_images()
    assert 4 <= len(images) <= 6
    for image in images:
        assert image.startswith("https://orchestra.example.com/orchestra/static/orchestra/demo/")
        assert image.endswith(".svg")


# --- simple_workflow ------------------------------------------------------------------------------------


@pytest.mark.filterwarnings(_NO_STATIC_ROOT_YET)
def test_crawl_page_defaults_to_the_demo_gallery_served_by_orchestra(settings: Any, live_server: Any) -> None:
    settings.ORCHESTRA_URL = live_server.url
    gallery = files.demo_gallery_images()
    status, content_type, body = _get(f"{live_server.url}/orchestra/demo/gallery/")
    assert (status, content_type) == (200, "text/html")
    for image in gallery:
        assert f'src="{image}"'.encode() in body

    seen = set()
    for _ in range(20):
        result = crawl_page({"project_id": 1}, {})
        assert set(result) == {"status", "image"}
        assert result["status"] == "success"
        assert result["image"] in gallery
        seen.add(result["image"])
    assert len(seen) > 1  # a random pick, not always the first image (fails with odds ~5**-19)

    status, content_type, body = _get(result["image"])
    assert (status, content_type) == (200, "image/svg+xml")
    assert body.lstrip().startswith(b"<svg")


def test_crawl_page_makes_relative_image_urls_absolute(pages: tuple[str, dict[str, bytes]]) -> None:
    base, content = pages
    content["/blog/post.html"] = b'<p>Hi</p><img alt="no source"><IMG SRC="../img/me.jpg">'
    result = crawl_page({"url": f"{base}/blog/post.html", "project_id": 3}, {})
    assert result == {"status": "success", "image": f"{base}/img/me.jpg"}

    content["/based.html"] = b'<base href="https://cdn.example.com/assets/"><img src="cat.png"/>'
    assert crawl_page({"url": f"{base}/based.html"}, {})["image"] == "https://cdn.example.com/assets/cat.png"


def test_crawl_page_without_images_fails_clearly(pages: tuple[str, dict[str, bytes]]) -> None:
    base, content = pages
    content["/empty.html"] = b"<html><body><p>Only words here.</p></body></html>"
    with pytest.raises(ValueError, match=r"page at http://127\.0\.0\.1:\d+/empty\.html has no <img> tags"):
        crawl_page({"url": f"{base}/empty.html", "project_id": 1}, {})


def test_crawl_page_reports_unreachable_and_bad_urls(pages: tuple[str, dict[str, bytes]]) -> None:
    base, _ = pages
    with pytest.raises(ConnectionError, match="HTTP 404"):
        crawl_page({"url": f"{base}/missing.html"}, {})
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(ConnectionError, match="could not fetch"):
        crawl_page({"url": f"http://127.0.0.1:{closed_port}/"}, {})
    with pytest.raises(ValueError, match="must be an http"):
        crawl_page({"url": "file:///etc/passwd"}, {})


# --- journalism_workflow -------------------------------------------------------------------------------


def test_create_documents_makes_the_article_and_photo_folder(media: Path) -> None:
    result = create_documents({"project_id": 7, "article_title": "Bridge reopens"}, {})
    assert result == {
        "articleURL": "http://testserver/orchestra/files/journalism/project-7/article.md",
        "article_document": "journalism/project-7/article.md",
        "raw_photos_folder": "journalism/project-7/raw_photos",
        "photos_folder_url": "http://testserver/orchestra/files/journalism/project-7/raw_photos",
    }
    article = files.read_file(result["article_document"]).decode()
    assert article.startswith("# Bridge reopens\n")
    assert "## Lede" in article
    assert files.list_folder(result["raw_photos_folder"]) == []

    files.save_file(result["article_document"], b"# Bridge reopens\n\nThe reporter's draft.")
    again = create_documents({"project_id": 7, "article_title": "Bridge reopens"}, {})
    assert again == result
    assert files.read_file(result["article_document"]) == b"# Bridge reopens\n\nThe reporter's draft."

    with pytest.raises(ValueError, match="project_id"):
        create_documents({"article_title": "No project"}, {})


@pytest.mark.django_db
def test_create_documents_titles_the_article_with_the_project_description(media: Path) -> None:
    from django.utils import timezone

    from orchestra.models import Project, Workflow, WorkflowVersion

    workflow = Workflow.objects.create(slug="journalism", name="Journalism Workflow", definition={})
    version = WorkflowVersion.objects.create(workflow=workflow, slug="v1", name="v1", digest="")
    now = timezone.now()
    project = Project.objects.create(
        version=version, short_description="Storm hits the coast", created_at=now, updated_at=now
    )
    result = create_documents({"project_id": project.pk}, {})
    assert files.read_file(result["article_document"]).startswith(b"# Storm hits the coast\n")

    untitled = create_documents({"project_id": project.pk + 1000}, {})  # no such project, no title
    assert files.read_file(untitled["article_document"]).startswith(b"# Untitled article\n")


@pytest.mark.django_db(transaction=True)
def test_autoadjust_photos_greyscales_and_shrinks_the_raw_photos(media: Path, client: Any) -> None:
    from orchestra.services.workers import worker_create

    worker_create(username="ann", password="pw")
    client.login(username="ann", password="pw")  # stored files are served to signed-in people
    project_data = {"project_id": 7, "article_title": "Bridge reopens"}
    documents = create_documents(project_data, {})
    raw = documents["raw_photos_folder"]
    files.save_file(f"{raw}/wide.png", _image_bytes((2000, 1000), (255, 0, 0), "PNG"))
    files.save_file(f"{raw}/tall.JPG", _image_bytes((900, 1800), (0, 0, 255), "JPEG"))
    files.save_file(f"{raw}/small.gif", _image_bytes((300, 200), (0, 255, 0), "GIF"))
    files.save_file(f"{raw}/clear.png", _image_bytes((1600, 1600), (0, 0, 0, 0), "PNG", mode="RGBA"))
    files.save_file(f"{raw}/notes.txt", b"caption ideas: bridge at dawn")

    prerequisites = {"document_creation": documents, "photography": {}, "article_planning": {}}
    result = autoadjust_photos(project_data, prerequisites)

    adjusted = "journalism/project-7/adjusted_photos"
    assert [photo["name"] for photo in result["photos"]] == [
        f"{adjusted}/clear.png",
        f"{adjusted}/small.png",
        f"{adjusted}/tall.png",
        f"{adjusted}/wide.png",
    ]
    assert [photo["original"] for photo in result["photos"]] == [
        f"{raw}/clear.png",
        f"{raw}/small.gif",
        f"{raw}/tall.JPG",
        f"{raw}/wide.png",
    ]  # notes.txt skipped
    expected = {  # name: (size, grey level) -- L = 0.299 R + 0.587 G + 0.114 B
        "clear.png": ((1200, 1200), 255),  # transparent -> flattened onto white
        "small.png": ((300, 200), 150),  # never enlarged
        "tall.png": ((600, 1200), 29),
        "wide.png": ((1200, 600), 76),
    }
    for photo in result["photos"]:
        assert set(photo) == {"src", "name", "original"}
        assert photo["src"] == f"http://testserver/orchestra/files/{photo['name']}"
        data = files.read_file(photo["name"])
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.mode == "L"
            size, grey = expected[photo["name"].rsplit("/", 1)[-1]]
            assert image.size == size
            assert abs(image.getpixel((image.width // 2, image.height // 2)) - grey) <= 3
        response = client.get(photo["src"].removeprefix("http://testserver"))
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == data
        response.close()

    smaller = autoadjust_photos(project_data, prerequisites, max_size=100)
    with Image.open(io.BytesIO(files.read_file(f"{adjusted}/wide.png"))) as image:
        assert image.size == (100, 50)
    assert len(smaller["photos"]) == 4


def test_autoadjust_photos_keeps_photos_that_share_a_stem_apart(media: Path) -> None:
    documents = create_documents({"project_id": 8, "article_title": "Twins"}, {})
    raw = documents["raw_photos_folder"]
    files.save_file(f"{raw}/cat.jpg", _image_bytes((20, 10), (10, 10, 10), "JPEG"))
    files.save_file(f"{raw}/cat.png", _image_bytes((20, 10), (200, 200, 200), "PNG"))
    result = autoadjust_photos({"project_id": 8}, {"document_creation": documents})
    names = [photo["name"] for photo in result["photos"]]
    assert names == [
        "journalism/project-8/adjusted_photos/cat-jpg.png",
        "journalism/project-8/adjusted_photos/cat-png.png",
    ]


def test_autoadjust_photos_with_no_photos_returns_an_empty_list(media: Path) -> None:
    documents = create_documents({"project_id": 9, "article_title": "Words only"}, {})
    files.save_file(f"{documents['raw_photos_folder']}/readme.txt", b"no photos today")
    assert autoadjust_photos({"project_id": 9}, {"document_creation": documents}) == {"photos": []}


def test_autoadjust_photos_names_a_corrupt_photo(media: Path) -> None:
    documents = create_documents({"project_id": 10, "article_title": "Broken"}, {})
    raw = documents["raw_photos_folder"]
    files.save_file(f"{raw}/fine.png", _image_bytes((10, 10), (1, 2, 3), "PNG"))
    files.save_file(f"{raw}/broken.jpg", b"\xff\xd8\xff this is not really a JPEG")
    with pytest.raises(ValueError, match=r"project-10/raw_photos/broken\.jpg is not a readable image"):
        autoadjust_photos({"project_id": 10}, {"document_creation": documents})


def test_autoadjust_photos_explains_missing_inputs(media: Path) -> None:
    with pytest.raises(ValueError, match="document_creation"):
        autoadjust_photos({"project_id": 11}, {"photography": {}})
    missing = {"raw_photos_folder": "journalism/project-11/raw_photos"}
    with pytest.raises(ValueError, match="does not exist"):
        autoadjust_photos({"project_id": 11}, {"document_creation": missing})
    documents = create_documents({"project_id": 11, "article_title": "x"}, {})
    with pytest.raises(ValueError, match="max_size"):
        autoadjust_photos({"project_id": 11}, {"document_creation": documents}, max_size=0)


# --- sample data ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_simple_workflow_sample_data_creates_the_demo_admin() -> None:
    from orchestra.models import Worker

    simple_sample_data.load(None)
    simple_sample_data.load(None)  # idempotent

    user = get_user_model().objects.get(username="demo")
    assert user.check_password("demo")
    assert user.first_name and user.last_name
    assert list(user.groups.values_list("name", flat=True)) == ["project_admins"]
    assert Worker.objects.filter(user=user).count() == 1


JOURNALISM_USERS = {
    # username: (password, {(certification, role)})
    "journalism-editor": ("editor", {("editor", "entry_level")}),
    "journalism-reporter-1": ("reporter", {("reporter", "entry_level")}),
    "journalism-reporter-2": ("reporter", {("reporter", "entry_level"), ("reporter", "reviewer")}),
    "journalism-photographer-1": ("photographer", {("photographer", "entry_level")}),
    "journalism-photographer-2": (
        "photographer",
        {("photographer", "entry_level"), ("photographer", "reviewer")},
    ),
    "journalism-copy-editor": ("copy-editor", {("copy_editor", "entry_level")}),
}


@pytest.mark.django_db
def test_journalism_sample_data_creates_the_six_certified_admins() -> None:
    from orchestra.models import Certification, Worker, WorkerCertification, Workflow

    workflow = Workflow.objects.create(slug="journalism", name="Journalism Workflow", definition={})
    for slug in ("editor", "reporter", "photographer", "copy_editor"):
        Certification.objects.create(workflow=workflow, slug=slug, name=slug.replace("_", " ").title())

    journalism_sample_data.load(None)
    journalism_sample_data.load(None)  # idempotent

    assert Worker.objects.count() == 6
    for username, (password, certifications) in JOURNALISM_USERS.items():
        user = get_user_model().objects.get(username=username)
        assert user.check_password(password), username
        assert user.first_name and user.last_name, username
        assert list(user.groups.values_list("name", flat=True)) == ["project_admins"], username
        held = WorkerCertification.objects.filter(worker__user=user)
        assert {(c.certification.slug, c.role) for c in held} == certifications, username
        assert {c.task_class for c in held} == {"real"}, username
        assert {c.certification.workflow_id for c in held} == {workflow.pk}, username
    assert WorkerCertification.objects.count() == 8


@pytest.mark.django_db
def test_journalism_sample_data_needs_the_workflow_loaded_first() -> None:
    from orchestra.engine.errors import NotFound

    with pytest.raises(NotFound, match="is the workflow loaded"):
        journalism_sample_data.load(None)
