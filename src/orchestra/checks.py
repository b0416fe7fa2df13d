"""System checks with stable IDs (`orchestra.E001`...), run by `orchestra check` and at start-up."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from orchestra import conf

EXECUTORS = ("local", "eager", "celery")


@register()
def check_executor(app_configs: Any, **kwargs: Any) -> list[Error]:
    executor = conf.get("ORCHESTRA_EXECUTOR")
    if executor not in EXECUTORS:
        return [
            Error(
                f"ORCHESTRA_EXECUTOR is {executor!r}",
                hint=f"Set ORCHESTRA_EXECUTOR to one of: {', '.join(EXECUTORS)}.",
                id="orchestra.E001",
            )
        ]
    if executor == "celery":
        try:
            import celery  # noqa: F401
        except ImportError:
            return [
                Error(
                    "ORCHESTRA_EXECUTOR is 'celery', but Celery is not installed",
                    hint="pip install 'orchestra[celery]' (Celery and the Redis client), or set"
                    " ORCHESTRA_EXECUTOR=local to run machine steps in Orchestra's own processes.",
                    id="orchestra.E002",
                )
            ]
    return []
