"""B12's import path for assignment policies (`orchestra.assignment_policies.specified_worker`, ...)."""

from orchestra.engine.policies.assignment import (
    anyone_certified,
    previously_completed_steps,
    specified_worker,
)

__all__ = ["anyone_certified", "previously_completed_steps", "specified_worker"]
