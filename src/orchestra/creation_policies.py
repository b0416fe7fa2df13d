"""B12's import path for creation policies (`orchestra.creation_policies.always_create`)."""

from orchestra.engine.policies.creation import always_create

__all__ = ["always_create"]
