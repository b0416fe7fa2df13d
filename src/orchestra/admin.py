"""The Django admin for every model, at /orchestra/admin/ in the standalone server.

Status changes belong to services, so statuses are read-only here; the event log is read-only entirely.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from orchestra import models


@admin.register(models.Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "updated_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["definition", "code_directory"]


@admin.register(models.WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "name", "digest", "updated_at"]
    list_select_related = ["workflow"]
    readonly_fields = ["definition", "digest"]


@admin.register(models.Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "version", "position"]
    list_select_related = ["version__workflow"]
    list_filter = ["kind"]


@admin.register(models.Certification)
class CertificationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "workflow"]
    list_select_related = ["workflow"]


@admin.register(models.Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]


@admin.register(models.WorkerCertification)
class WorkerCertificationAdmin(admin.ModelAdmin):
    list_display = ["worker", "certification", "role", "task_class"]
    list_select_related = ["worker__user", "certification"]
    list_filter = ["role", "task_class"]


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "short_description", "version", "status", "priority", "task_class", "created_at"]
    list_select_related = ["version__workflow"]
    list_filter = ["status", "task_class"]
    readonly_fields = ["status", "created_at", "updated_at", "ended_at"]


@admin.register(models.Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "step", "status", "attempts", "updated_at"]
    list_select_related = ["step", "project"]
    list_filter = ["status"]
    readonly_fields = ["status", "claim_token", "claimed_by", "lease_expires_at", "attempts"]


@admin.register(models.TaskAssignment)
class TaskAssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "worker", "level", "status"]
    list_select_related = ["task", "worker__user"]
    readonly_fields = ["status"]


@admin.register(models.Iteration)
class IterationAdmin(admin.ModelAdmin):
    list_display = ["id", "assignment", "worker", "status", "start_datetime", "end_datetime"]
    list_select_related = ["assignment", "worker__user"]
    readonly_fields = ["status"]


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "at", "actor", "action", "project", "task", "from_status", "to_status", "seq", "hash"]
    list_filter = ["action"]
    search_fields = ["actor", "action"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _CredentialAdmin(admin.ModelAdmin):
    """Credentials are made where their secret can be shown once (`orchestra apikey create`, `orchestra
    token create`, the account page); here they are listed and revoked through the services."""

    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.ApiKey)
class ApiKeyAdmin(_CredentialAdmin):
    list_display = ["key_id", "name", "created_at", "created_by", "revoked_at"]

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from orchestra.services.access import apikey_revoke

        for key in queryset:
            apikey_revoke(key=key.key_id, actor=request.user)


@admin.register(models.PersonalToken)
class PersonalTokenAdmin(_CredentialAdmin):
    list_display = ["prefix", "user", "name", "created_at", "revoked_at"]
    list_select_related = ["user"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from orchestra.services.access import token_revoke

        for token in queryset:
            token_revoke(token_id=token.pk, actor=request.user)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Workers change their time through the worker API and pages (services write the events)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.TimeEntry)
class TimeEntryAdmin(_ReadOnlyAdmin):
    list_display = ["id", "worker", "date", "time_worked", "description", "assignment"]
    list_select_related = ["worker__user"]
    list_filter = ["date"]


@admin.register(models.TaskTimer)
class TaskTimerAdmin(_ReadOnlyAdmin):
    list_display = ["worker", "assignment", "description", "start_time", "stop_time"]
    list_select_related = ["worker__user"]


class TaskLogInline(admin.TabularInline):
    model = models.TaskLog
    fields = ["created_at", "source", "level", "name", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.TaskRun)
class TaskRunAdmin(_ReadOnlyAdmin):
    """Runs of script and external steps, with what they reported (written by the SDK endpoints)."""

    list_display = ["id", "task", "attempt", "status", "reported_status", "exit_code", "started_at", "finished_at"]
    list_select_related = ["task__step"]
    list_filter = ["status"]
    inlines = [TaskLogInline]


@admin.register(models.SeenSignature)
class SeenSignatureAdmin(admin.ModelAdmin):
    """The replay guard's memory of accepted request signatures; read-only (rows expire by themselves)."""

    list_display = ["signature_id", "expires_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    """Which project each stored file belongs to (who may download it); written by the file store."""

    list_display = ["name", "project", "created_at"]
    list_select_related = ["project"]
    search_fields = ["name"]
    raw_id_fields = ["project"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.WorkflowObject)
class WorkflowObjectAdmin(admin.ModelAdmin):
    """Task-list objects, read-only: decisions about them go through the Holding Pen (services)."""

    list_display = ["task", "status", "action", "message", "updated_at"]
    list_filter = ["status", "action"]
    search_fields = ["message"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionForm(forms.ModelForm):  # type: ignore[type-arg]
    """Checks what the service checks, so a bad URL or event type is an error on its field."""

    class Meta:
        model = models.Subscription
        fields = ["name", "channel", "url", "secret", "event_types", "workflow", "project", "active"]

    def clean(self) -> dict[str, Any]:
        from django.core.exceptions import ValidationError as FormError

        from orchestra.engine.errors import ValidationError
        from orchestra.services.subscriptions import _check_types, _check_url

        data = super().clean()
        for name, check in (("url", _check_url), ("event_types", _check_types)):
            if name in data:
                try:
                    data[name] = check(data[name] if name == "url" else list(data[name] or []))
                except ValidationError as exc:
                    raise FormError({name: exc.message}) from exc
        return data


@admin.register(models.Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Webhook and Slack subscriptions; saved through the services, so each change is in the event log.
    A webhook saved without a secret gets a generated one (shown here)."""

    form = SubscriptionForm
    list_display = ["id", "name", "channel", "url", "event_types", "workflow", "project", "active"]
    list_filter = ["channel", "active"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from orchestra.services.subscriptions import subscription_create, subscription_update

        fields = {
            "name": obj.name,
            "url": obj.url,
            "event_types": obj.event_types,
            "workflow": obj.workflow.slug if obj.workflow else None,
            "project_id": obj.project_id,
        }
        if change:
            saved = subscription_update(
                subscription_id=obj.pk, secret=obj.secret, active=obj.active, actor=request.user, **fields
            )
        else:
            saved = subscription_create(channel=obj.channel, secret=obj.secret or None, actor=request.user, **fields)
            if not obj.active:
                saved = subscription_update(subscription_id=saved.pk, active=False, actor=request.user)
        obj.pk, obj.secret = saved.pk, saved.secret

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from orchestra.services.subscriptions import subscription_delete

        subscription_delete(subscription_id=obj.pk, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class DeliveryAttemptInline(admin.TabularInline):
    model = models.DeliveryAttempt
    fields = ["number", "at", "ok", "status_code", "error", "response", "duration_ms", "owner"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Delivery)
class DeliveryAdmin(_ReadOnlyAdmin):
    """The outbox: every delivery with its attempts; dead letters can be sent again."""

    list_display = ["id", "status", "channel", "event_type", "event", "subscription", "attempts", "last_status_code"]
    list_filter = ["status", "channel", "event_type"]
    list_select_related = ["event", "subscription"]
    raw_id_fields = ["event"]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Send the selected deliveries again")
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        from orchestra.services.subscriptions import deliveries_redeliver

        done = deliveries_redeliver(delivery_ids=list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(request, f"{len(done)} delivery(ies) queued again")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.DeliveryAttempt)
class DeliveryAttemptAdmin(_ReadOnlyAdmin):
    list_display = ["delivery", "number", "at", "ok", "status_code", "error", "duration_ms"]
    list_filter = ["ok"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.LedgerHead)
class LedgerHeadAdmin(_ReadOnlyAdmin):
    """Each hash chain's last row (chain 0: events of no project); `orchestra audit verify` checks them."""

    list_display = ["chain", "seq", "hash"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
