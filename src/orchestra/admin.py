"""The Django admin for every model, at /orchestra/admin/ in the standalone server.

Status changes belong to services, so statuses are read-only here; the event log is read-only entirely.
"""

from __future__ import annotations

from typing import Any

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
    list_display = ["id", "at", "actor", "action", "project", "task", "from_status", "to_status"]
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
