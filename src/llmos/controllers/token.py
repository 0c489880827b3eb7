"""TokenReconciler: deletes expired sessions and marks expired API keys.

Expired API keys are kept (marked ``status.expired``) so their owners can see
why a key stopped working; expired sessions are simply removed.
"""

from __future__ import annotations

from llmos._lib import timefmt
from llmos.controllers.loop import ObjectKey
from llmos.store.base import ResourceStore

TOKENS = "tokens.management.llmos.ai"


class TokenReconciler:
    resource = TOKENS

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    async def reconcile(self, key: ObjectKey) -> float | None:
        token = await self.store.get(TOKENS, "", key.name)
        expires = (token.get("spec") or {}).get("expiresAt")
        if not expires:
            return None
        left = timefmt.seconds_until(expires)  # unreadable: expired, as auth reads it
        if left > 0:
            return left + 0.5
        if token["spec"].get("type") == "session":
            await self.store.delete(TOKENS, "", key.name)
            return None
        status = token.setdefault("status", {})
        if not status.get("expired"):
            status["expired"] = True
            await self.store.update_status(TOKENS, token)
        return None
