"""The local runtime: each replica a supervised process on this machine (embedded mode).

See ``runtime.py`` for the lifecycle and ``supervisor.py`` for the restart rules.
"""

from llmos.runtime.local.errors import LocalRuntimeError
from llmos.runtime.local.runtime import LocalRuntime
from llmos.runtime.local.timing import Timing

__all__ = ["LocalRuntime", "LocalRuntimeError", "Timing"]
