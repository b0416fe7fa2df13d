"""Orchestra's URLs; include them under "orchestra/" in your project: path("orchestra/", include("orchestra.urls"))."""

from __future__ import annotations

from django.urls import path

from orchestra.api.main import api
from orchestra.web import views

app_name = "orchestra"

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status, name="status"),
    path("demo/gallery/", views.demo_gallery, name="demo_gallery"),
    path("files/<path:name>", views.stored_file, name="stored_file"),
    path("api/", api.urls),
]
