from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from orchestra import files
from orchestra.selectors.overview import home_overview


def home(request: HttpRequest) -> HttpResponse:
    """What is loaded and running: workflows and their versions, and the latest projects."""
    return render(request, "orchestra/home.html", home_overview())


def status(request: HttpRequest) -> HttpResponse:
    return HttpResponse("OK", content_type="text/plain")


def demo_gallery(request: HttpRequest) -> HttpResponse:
    """A page of images the simple workflow's `crawl` step can pick from, so the demo needs no internet."""
    return render(request, "orchestra/demo_gallery.html", {"images": files.demo_gallery_images()})


def stored_file(request: HttpRequest, name: str) -> HttpResponse:
    """Serve a file from Orchestra's file store (used by the examples instead of Google Drive)."""
    try:
        handle = files.open_file(name)
    except (FileNotFoundError, ValueError):
        raise Http404(f"no stored file {name!r}")
    return FileResponse(handle)
