"""Backoff between attempts of an automated step."""

from __future__ import annotations

from orchestra.engine.definitions import RetryPolicy
from orchestra.engine.policies.review import Rng


def attempts_left(policy: RetryPolicy, attempts_made: int) -> bool:
    return attempts_made < policy.max_attempts


def backoff_seconds(policy: RetryPolicy, attempts_made: int, rng: Rng) -> float:
    """Exponential backoff after the `attempts_made`-th failure, capped; full jitter keeps retries apart."""
    delay = policy.backoff_seconds * policy.backoff_factor ** max(attempts_made - 1, 0)
    delay = min(delay, policy.max_backoff_seconds)
    if policy.jitter:
        delay = delay * (0.5 + rng.random() / 2)
    return delay
