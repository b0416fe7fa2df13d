"""The control-flow helpers of `workflow.patterns`, for task lists: `from orchestra.workflows.patterns import IF`."""

from orchestra.engine.patterns import *  # noqa: F403
from orchestra.engine.patterns import __all__ as __all__
