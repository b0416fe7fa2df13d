"""Orchestra's URLs; include them under "orchestra/" in your project: path("orchestra/", include("orchestra.urls"))."""

from __future__ import annotations

from django.urls import include, path, re_path

from orchestra.api.legacy import legacy_receive
from orchestra.api.main import not_found as api_not_found
from orchestra.api.main import urls as api_urls
from orchestra.web import views

app_name = "orchestra"

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status, name="status"),
    path("demo/gallery/", views.demo_gallery, name="demo_gallery"),
    path("files/<path:name>", views.stored_file, name="stored_file"),
    # The legacy orcProcess client; the standalone server also serves it at /jobs/sdk/sdk_receive.
    path("api/sdk/sdk_receive/", legacy_receive, name="sdk_receive"),
    path("api/", api_urls()),
    re_path(r"^api/", api_not_found),  # JSON, like every API error, not the site's HTML 404
    path("", include("orchestra.web.urls")),
]
