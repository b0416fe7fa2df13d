"""Sample data for the simple workflow: the ``demo`` user (password ``demo``), a project admin.

The workflow has no certifications, so anyone may rate images. Loading twice is harmless.
"""

from __future__ import annotations

from typing import Any

from orchestra.services.workers import worker_create

# What `orchestra serve --load-examples` prints as demo logins.
SAMPLE_LOGINS = [("demo", "demo")]


def load(workflow_version: Any, **kwargs: Any) -> None:
    worker_create(
        username="demo",
        password="demo",
        first_name="Demo",
        last_name="User",
        email="demo@example.com",
        project_admin=True,
    )
