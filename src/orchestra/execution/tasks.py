"""Running a `tasks` step: its task list over the task's object, from where it last stopped.

The object is read (or made) before the run and saved with the run's outcome in the transaction that
moves its task on, so a crash mid-run re-runs the list from the last saved position: tasks of a list run
at least once, and each task's completion is applied once.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractContextManager

from django.utils import timezone

from orchestra.engine.execution import task_list
from orchestra.engine.tasklist import Engine, StartPoint, WorkflowObject, run, tasklist_hash
from orchestra.services._progress import Claim
from orchestra.services.machine import RunSpec
from orchestra.services.objects import object_begin, object_finish


def run_tasks_step(claim: Claim, spec: RunSpec, guard: Callable[[], AbstractContextManager[None]]) -> None:
    """Run the step's task list; the watchdog's `guard` covers the list's own code (timeouts, lost claims).

    Errors before the list starts (it cannot be imported, or changed since the object stopped) propagate
    to the runner, which fails the task without retry."""
    tasks = task_list(spec.step.execution)
    state = object_begin(claim=claim, tasks_hash=tasklist_hash(tasks))
    obj = WorkflowObject(data=state.data, extra_data=state.extra_data, id=claim.task_id)
    eng = Engine(
        name=spec.step.slug,
        extra_data=state.engine_data,
        project_data=spec.project_data,
        prerequisites=spec.prerequisites,
    )
    position = state.callback_pos or None
    start = state.start_point if position is not None else StartPoint.FIRST
    with guard():
        outcome = run(tasks, obj, eng, position=position, start_point=start, clock=timezone.now, hostname=_HOST)
    object_finish(claim=claim, obj=obj, engine_data=eng.extra_data, outcome=outcome)


_HOST = socket.gethostname()
