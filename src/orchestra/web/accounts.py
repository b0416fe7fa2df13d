"""Accounts: sign in and out, password change and reset (Django's views, our templates), optional
self-registration (ORCHESTRA_ALLOW_REGISTRATION), and the account page with personal API tokens and the
worker's email notification settings."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse, reverse_lazy
from django.views.decorators.http import require_POST

from orchestra import conf
from orchestra.engine.errors import OrchestraError
from orchestra.events.notifications import KINDS, wants
from orchestra.selectors.pages import personal_tokens
from orchestra.services.access import token_create, token_revoke
from orchestra.services.workers import worker_create, worker_set_notifications
from orchestra.web._access import page_caller, sentence, storable_input

T = "orchestra/accounts/"


class RegistrationForm(UserCreationForm):  # type: ignore[type-arg]
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=True, help_text="Password reset emails go here.")

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined,misc]
        fields = ("username", "first_name", "last_name", "email")


def register(request: HttpRequest) -> HttpResponse:
    """Self-registration, when ORCHESTRA_ALLOW_REGISTRATION is on: a worker with no certifications."""
    if not conf.get("ORCHESTRA_ALLOW_REGISTRATION"):
        raise Http404("self-registration is off (set ORCHESTRA_ALLOW_REGISTRATION=1 to allow it)")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        worker = worker_create(
            username=data["username"],
            password=data["password1"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
        )
        login(request, worker.user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! An admin gives you certifications before tasks come your way.")
        return redirect("orchestra:dashboard")
    return render(request, T + "register.html", {"form": form})


def _account_page(request: HttpRequest, *, notifications_error: str = "", status: int = 200) -> HttpResponse:
    caller = page_caller(request)
    worker = caller.worker
    context = {
        "caller": caller,
        "section": "account",
        "tokens": personal_tokens(request.user),
        "new_token": request.session.pop("orchestra_new_token", None),
        # None for a user with no Worker row (a plain admin): nobody mails them about tasks.
        "notifications": None
        if worker is None
        else [{"kind": kind, "label": label, "on": wants(worker, kind)} for kind, label in KINDS.items()],
        "notifications_error": notifications_error,
    }
    return render(request, T + "account.html", context, status=status)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in user's account: password change link, personal API tokens, email notifications."""
    return _account_page(request)


@require_POST
@login_required
@storable_input
def notifications_save(request: HttpRequest) -> HttpResponse:
    """Save the signed-in worker's notification checkboxes: a ticked `notify` value is on, the rest off."""
    worker = page_caller(request).worker
    if worker is None:
        message = "You are not an Orchestra worker, so there are no task emails to turn on or off."
        return _account_page(request, notifications_error=message, status=403)
    ticked = request.POST.getlist("notify")
    # Every kind the page shows is either ticked or not; a ticked value that is no kind is the service's to refuse.
    enabled = {kind: kind in ticked for kind in KINDS} | {kind[:50]: True for kind in ticked}
    try:
        worker_set_notifications(user=worker, enabled=enabled, actor=request.user)
    except OrchestraError as error:
        return _account_page(request, notifications_error=sentence(error.message), status=error.http_status)
    off = [KINDS[kind] for kind in KINDS if not enabled[kind]]
    messages.success(
        request, "Notifications saved: " + ("no emails about: " + "; ".join(off) + "." if off else "all emails on.")
    )
    return redirect(reverse("orchestra:account") + "#notifications")


@require_POST
@login_required
@storable_input
def token_new(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")[:200]
    token, raw = token_create(user=request.user, name=name)
    # Shown once, on the next page, and never stored: the database keeps only its hash.
    request.session["orchestra_new_token"] = {"name": token.name, "token": raw}
    return redirect("orchestra:account")


@require_POST
@login_required
def token_delete(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = token_revoke(token_id=token_id, user=request.user)
    except OrchestraError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token {token.name!r} revoked; requests using it are now refused.")
    return redirect("orchestra:account")


class LoginView(auth_views.LoginView):
    template_name = T + "login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {**super().get_context_data(**kwargs), "allow_registration": conf.get("ORCHESTRA_ALLOW_REGISTRATION")}


def _url(name: str) -> str:
    return reverse_lazy(f"orchestra:{name}")  # type: ignore[return-value]


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page=_url("login")), name="logout"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(template_name=T + "form.html", success_url=_url("password_change_done")),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name=T + "message.html"),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name=T + "form.html",
            email_template_name=T + "password_reset_email.txt",
            subject_template_name=T + "password_reset_subject.txt",
            success_url=_url("password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name=T + "message.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name=T + "form.html", success_url=_url("password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name=T + "message.html"),
        name="password_reset_complete",
    ),
    path("register/", register, name="register"),
    path("", account, name="account"),
    path("notifications/", notifications_save, name="notifications"),
    path("tokens/", token_new, name="token_create"),
    path("tokens/<int:token_id>/revoke/", token_delete, name="token_revoke"),
]
