from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from orchestra import files
from orchestra.models import TaskAssignment
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
    """Serve a file from Orchestra's file store (used by the examples instead of Google Drive) to signed-in
    people; a file that belongs to a project (an upload, or what its machine step saved) only to project
    admins and to the workers holding a seat on one of the project's tasks. Anyone else gets a 404, as for
    a file that does not exist, so names do not reveal what is stored."""
    missing = Http404(f"no stored file {name!r}")
    try:
        project_id = files.owner_of(name)
    except ValueError:
        raise missing from None
    caller = page_caller(request)
    if not caller.is_project_admin:
        if caller.worker is None:
            raise missing
        if project_id is not None and not (
            TaskAssignment.objects.filter(worker=caller.worker, task__project_id=project_id).exists()
        ):
            raise missing
    try:
        handle = files.open_file(name)
    except (FileNotFoundError, ValueError):
        raise missing from None
    return FileResponse(handle)
