"""The local runtime's one exception type.

Raised by :class:`~llmos.runtime.local.runtime.LocalRuntime` for misuse by its
caller (an empty command, ``ensure`` before ``start``, a state dir that another
live server holds). What goes wrong with a replica's *process* is never raised:
it becomes a :class:`~llmos.runtime.base.ReplicaStatus`.
"""

from __future__ import annotations

from llmos._lib.errors import LLMOSError

__all__ = ["LocalRuntimeError"]


class LocalRuntimeError(LLMOSError):
    """A call to the local runtime that cannot be carried out."""
