"""Example task-list workflows (Invenio-Workflows' documentation), registered in the demo."""

from __future__ import annotations

from orchestra.workflows.sample_tasks import add_data, halt_if_higher_than_20


class myworkflow:  # noqa: N801 - Invenio names workflows after their class, in lower case
    """Add 20 to integer and halt if higher."""

    workflow = [add_data(20), halt_if_higher_than_20]
