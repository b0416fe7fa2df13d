"""Review policies: after a submission or an accept, does another level of review follow?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestra.engine.definitions import CallableRef, ReviewPolicy
from orchestra.engine.errors import DefinitionError, Problem


class Rng(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class ReviewContext:
    """What a review policy may look at. Custom policies receive it as their first argument."""

    step_slug: str
    reviews_so_far: int  # review levels already created (0 after the entry-level submission)
    project_data: Mapping[str, Any] = field(default_factory=dict)
    task_data: Mapping[str, Any] = field(default_factory=dict)
    worker: str = ""  # username of the worker who just submitted


def review_needed(policy: ReviewPolicy, context: ReviewContext, rng: Rng) -> bool:
    """B12's semantics: `sampled_review` adds a level with probability `rate` until `max_reviews` levels.

    A custom policy is `fn(context, rng, **kwargs) -> bool`, named by dotted path in `policy`.
    """
    if policy.policy == "no_review":
        return False
    if policy.policy == "sampled_review":
        if policy.rate is None or policy.max_reviews is None:
            raise DefinitionError(
                [Problem(f"{context.step_slug}.review_policy", "sampled_review needs 'rate' and 'max_reviews'")]
            )
        if context.reviews_so_far >= policy.max_reviews:
            return False
        return rng.random() < policy.rate
    fn = CallableRef(path=policy.policy, kwargs=policy.kwargs).resolve()
    return bool(fn(context, rng, **policy.kwargs))
