"""Orchestra's Django models, one module per aggregate. Only services write to them."""

from orchestra.models.events import Event
from orchestra.models.projects import Iteration, Project, Task, TaskAssignment
from orchestra.models.workers import Worker, WorkerCertification
from orchestra.models.workflows import Certification, Step, Workflow, WorkflowVersion

__all__ = [
    "Certification",
    "Event",
    "Iteration",
    "Project",
    "Step",
    "Task",
    "TaskAssignment",
    "Worker",
    "WorkerCertification",
    "Workflow",
    "WorkflowVersion",
]
