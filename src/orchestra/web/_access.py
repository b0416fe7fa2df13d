"""Who is asking, for the pages: the signed-in user's Worker and whether they are a project admin.

One query (the worker with an admin flag) per request, cached on the request; the decorators turn
"not signed in" into the login page and "not allowed" into a 403 page that says why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from orchestra import conf
from orchestra.engine.text import printable_path, text_problem
from orchestra.models import Worker

View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class PageCaller:
    worker: Worker | None
    is_project_admin: bool


def page_caller(request: HttpRequest) -> PageCaller:
    cached: PageCaller | None = getattr(request, "_orchestra_caller", None)
    if cached is not None:
        return cached
    user: Any = request.user
    worker = None
    admin = bool(getattr(user, "is_superuser", False))
    if user.is_authenticated:
        in_admin_group = Group.objects.filter(name=conf.get("ORCHESTRA_PROJECT_ADMIN_GROUP"), user=OuterRef("user"))
        worker = Worker.objects.filter(user=user).annotate(is_admin=Exists(in_admin_group)).first()
        if worker is not None:
            worker.user = user
            admin = admin or bool(worker.is_admin)  # type: ignore[attr-defined]
        elif not admin:
            admin = user.groups.filter(name=conf.get("ORCHESTRA_PROJECT_ADMIN_GROUP")).exists()
    caller = PageCaller(worker=worker, is_project_admin=admin)
    request._orchestra_caller = caller  # type: ignore[attr-defined]
    return caller


def sentence(message: str) -> str:
    """An error message as a sentence for a page: capitalised, with a full stop."""
    message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else message + "."


def refuse(request: HttpRequest, message: str, *, status: int = 403) -> HttpResponse:
    """A page that says why the request was refused, with the status code that fits."""
    context = {"caller": page_caller(request), "message": message, "status": status}
    return render(request, "orchestra/app/refused.html", context, status=status)


def unstorable_field(request: HttpRequest) -> HttpResponse | None:
    """A 400 page naming the first query or form field that holds text no database can store (a NUL
    character, an unpaired surrogate), or None. The pages read their fields without Django's forms, whose text
    fields would refuse them."""
    for source in (request.GET, request.POST):
        for name, values in source.lists():
            for text in (name, *values):
                if problem := text_problem(text):
                    shown = printable_path(name)
                    return refuse(
                        request, f"The field {shown!r} {problem}; remove it and send the form again.", status=400
                    )
    return None


def storable_input(view: View) -> View:
    """Refuse (400) a request whose fields hold text that cannot be stored, before the view sees it."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return unstorable_field(request) or view(request, *args, **kwargs)

    return wrapped


def worker_page(view: View) -> View:
    """Signed in, and an Orchestra worker."""

    @login_required
    @storable_input
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        caller = page_caller(request)
        if caller.worker is None:
            match = request.resolver_match
            if caller.is_project_admin and match is not None and match.url_name == "dashboard":
                return redirect("orchestra:projects")  # an admin who is no worker lands on the projects
            return refuse(
                request,
                f"You are signed in as {request.user.get_username()!r}, who is not an Orchestra worker."
                " Ask an administrator to add you on the admin's Workers page.",
            )
        return view(request, caller, *args, **kwargs)

    return wrapped


def admin_page(view: View) -> View:
    """Signed in, and a project admin (a member of the project admin group, or a superuser)."""

    @login_required
    @storable_input
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        caller = page_caller(request)
        if not caller.is_project_admin:
            group = conf.get("ORCHESTRA_PROJECT_ADMIN_GROUP")
            return refuse(request, f"Only project admins (members of the {group!r} group) can see this page.")
        return view(request, caller, *args, **kwargs)

    return wrapped
