"""URLs of the standalone server (`orchestra serve`): Orchestra under /orchestra/ plus the Django admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from orchestra.api.legacy import legacy_receive

urlpatterns = [
    path("", RedirectView.as_view(url="/orchestra/", permanent=False)),
    path("orchestra/admin/", admin.site.urls),
    path("orchestra/", include("orchestra.urls")),
    # Where the legacy orchestra-sdk 0.0.9 `orcProcess` client posts (its URL is hard-coded).
    path("jobs/sdk/sdk_receive", legacy_receive),
    path("jobs/sdk/sdk_receive/", legacy_receive),
]
