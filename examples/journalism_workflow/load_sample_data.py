"""Sample data for the journalism workflow: the six workers of B12's newsroom demo.

All of them are project admins (as in B12) and hold REAL certifications of the ``journalism`` workflow:

| username | password | certifications |
|---|---|---|
| journalism-editor | editor | editor (entry_level) |
| journalism-reporter-1 | reporter | reporter (entry_level) |
| journalism-reporter-2 | reporter | reporter (entry_level, reviewer) |
| journalism-photographer-1 | photographer | photographer (entry_level) |
| journalism-photographer-2 | photographer | photographer (entry_level, reviewer) |
| journalism-copy-editor | copy-editor | copy_editor (entry_level) |

The workflow (and so its certifications) must be loaded first. Loading twice is harmless.
"""

from __future__ import annotations

from typing import Any

from orchestra.services.workers import worker_certify, worker_create

WORKFLOW_SLUG = "journalism"

# (username, password, first name, last name, [(certification, role), ...]); entry_level before reviewer.
WORKERS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("journalism-editor", "editor", "Edith", "Editor", [("editor", "entry_level")]),
    ("journalism-reporter-1", "reporter", "Rita", "Reporter", [("reporter", "entry_level")]),
    (
        "journalism-reporter-2",
        "reporter",
        "Reggie",
        "Reporter",
        [("reporter", "entry_level"), ("reporter", "reviewer")],
    ),
    ("journalism-photographer-1", "photographer", "Pat", "Photographer", [("photographer", "entry_level")]),
    (
        "journalism-photographer-2",
        "photographer",
        "Phoebe",
        "Photographer",
        [("photographer", "entry_level"), ("photographer", "reviewer")],
    ),
    ("journalism-copy-editor", "copy-editor", "Cory", "Copyeditor", [("copy_editor", "entry_level")]),
]

# What `orchestra serve --load-examples` prints as demo logins.
SAMPLE_LOGINS = [(username, password) for username, password, *_ in WORKERS]


def load(workflow_version: Any, **kwargs: Any) -> None:
    for username, password, first_name, last_name, certifications in WORKERS:
        worker = worker_create(
            username=username,
            password=password,
            first_name=first_name,
            last_name=last_name,
            email=f"{username}@example.com",
            project_admin=True,
        )
        for certification_slug, role in certifications:
            worker_certify(
                worker=worker,
                workflow_slug=WORKFLOW_SLUG,
                certification_slug=certification_slug,
                role=role,
                task_class="real",
            )
