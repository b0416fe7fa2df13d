"""Orchestra's URLs; include them under "orchestra/" in your project: path("orchestra/", include("orchestra.urls"))."""

from __future__ import annotations

from django.urls import include, path

from orchestra.api.legacy import legacy_receive
from orchestra.api.main import api
from orchestra.web import views

app_name = "orchestra"

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status, name="status"),
    path("demo/gallery/", views.demo_gallery, name="demo_gallery"),
    path("files/<path:name>", views.stored_file, name="stored_file"),
    # The legacy orcProcess client; the standalone server also serves it at /jobs/sdk/sdk_receive.
    path("api/sdk/sdk_receive/", legacy_receive, name="sdk_receive"),
    path("api/", api.urls),
    path("", include("orchestra.web.urls")),
]
