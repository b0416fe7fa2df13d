"""Orchestra's Django models, one module per aggregate. Only services write to them."""

from orchestra.models.access import ApiKey, PersonalToken, SeenSignature
from orchestra.models.events import Event, LedgerHead
from orchestra.models.files import StoredFile
from orchestra.models.objects import WorkflowObject
from orchestra.models.outbox import Channel, Delivery, DeliveryAttempt, DeliveryStatus, Subscription
from orchestra.models.projects import Iteration, Project, Task, TaskAssignment
from orchestra.models.runs import RunStatus, TaskLog, TaskRun
from orchestra.models.timekeeping import TaskTimer, TimeEntry
from orchestra.models.workers import Worker, WorkerCertification
from orchestra.models.workflows import Certification, Step, Workflow, WorkflowVersion

__all__ = [
    "ApiKey",
    "Certification",
    "Channel",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Event",
    "Iteration",
    "LedgerHead",
    "PersonalToken",
    "Project",
    "RunStatus",
    "SeenSignature",
    "Step",
    "StoredFile",
    "Subscription",
    "Task",
    "TaskAssignment",
    "TaskLog",
    "TaskRun",
    "TaskTimer",
    "TimeEntry",
    "Worker",
    "WorkerCertification",
    "Workflow",
    "WorkflowObject",
    "WorkflowVersion",
]
