"""The pages' URLs, included by `orchestra.urls` under app/ and accounts/."""

from __future__ import annotations

from django.urls import include, path

from orchestra.web import accounts, holdingpen, projects, timekeeping, worker

app_patterns = [
    path("", worker.dashboard, name="dashboard"),
    path("new/<str:role>/", worker.new_task, name="new_task"),
    path("tasks/<int:task_id>/", worker.task_detail, name="task"),
    path("timer/", timekeeping.timer, name="timer"),
    path("timer/<str:action>/", timekeeping.timer_action, name="timer_action"),
    path("timecards/", timekeeping.timecards, name="timecards"),
    path("timecards/<int:entry_id>/", timekeeping.timecard_edit, name="timecard_edit"),
    path("timecards/<int:entry_id>/delete/", timekeeping.timecard_delete, name="timecard_delete"),
    path("projects/", projects.projects, name="projects"),
    path("projects/<int:project_id>/", projects.project_detail, name="project"),
    path("projects/<int:project_id>/<str:action>/", projects.project_action, name="project_action"),
    path("workflows/", projects.workflows, name="workflows"),
    path("holdingpen/", holdingpen.holding_pen, name="holdingpen"),
    path("holdingpen/bulk/", holdingpen.holding_pen_bulk, name="holdingpen_bulk"),
    path("holdingpen/<int:task_id>/", holdingpen.holding_pen_object, name="holdingpen_object"),
    path("holdingpen/<int:task_id>/<str:operation>/", holdingpen.holding_pen_action, name="holdingpen_action"),
]

urlpatterns = [
    path("app/", include(app_patterns)),
    path("accounts/", include(accounts.urlpatterns)),
]
