from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from orchestra import files
from orchestra.engine.errors import NotFound
from orchestra.selectors import pages
from orchestra.selectors.overview import home_overview
from orchestra.web._access import page_caller


def home(request: HttpRequest) -> HttpResponse:
    """What is loaded and running: workflows and their versions, and the latest projects."""
    return render(request, "orchestra/home.html", home_overview())


def status(request: HttpRequest) -> HttpResponse:
    return HttpResponse("OK", content_type="text/plain")


def demo_gallery(request: HttpRequest) -> HttpResponse:
    """A page of images the simple workflow's `crawl` step can pick from, so the demo needs no internet."""
    return render(request, "orchestra/demo_gallery.html", {"images": files.demo_gallery_images()})


@login_required
def stored_file(request: HttpRequest, name: str) -> HttpResponse:
    """Serve a file from Orchestra's file store (used by the examples instead of Google Drive) to whoever
    may see it (orchestra.selectors.pages.stored_file says who); a 404 for anyone else."""
    caller = page_caller(request)
    try:
        handle = pages.stored_file(name, caller.worker, is_project_admin=caller.is_project_admin)
    except NotFound as exc:
        raise Http404(exc.message) from None
    return FileResponse(handle)
