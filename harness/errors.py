"""Whose fault it is: the user's input, a scenario, the target, or the harness itself.

The engine turns each into a verdict or an exit status in one place (``harness.cli``):
``UsageError`` is exit 2; ``ScenarioError`` and ``HarnessInternalError`` make a result
``error``; anything the target does wrong is an observation, never an exception here.
"""


class HarnessError(Exception):
    """Base class of the harness's own errors."""


class UsageError(HarnessError):
    """The user's command line or spec is wrong; the message says which part."""


class ScenarioError(HarnessError):
    """A scenario used the harness wrongly (a bug in the catalog, not in a target)."""


class TargetDidNotStart(Exception):
    """The target's server process never became ready: its import raised, it exited, or it
    hung before ``ready``. The target's fault, so a verdict about it, never ``error``."""


class AgentGone(HarnessError):
    """The server process ended or stopped answering while a scenario needed it."""


class HarnessInternalError(HarnessError):
    """This should never happen: please file a bug with the report attached."""
