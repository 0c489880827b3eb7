"""The model hub token a ModelService names in ``spec.hfTokenSecret``.

It is the Hugging Face token, or the ModelScope one for ``modelRegistry: modelscope``.
"""

from __future__ import annotations

from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers.loop import ObjectKey
from llmos.engines.base import EngineError
from llmos.store.base import ResourceStore, WatchEvent

SECRETS = "secrets.management.llmos.ai"
HF_TOKEN_KEY = "token"  # the key of spec.hfTokenSecret that holds the token
MODELSERVICES = "modelservices.ml.llmos.ai"


async def hf_token(store: ResourceStore, ms: dict[str, Any]) -> str | None:
    """The token in the ``token`` key of ``spec.hfTokenSecret``; None if none is named."""
    name = ms["spec"].get("hfTokenSecret")
    if not name:
        return None
    hub = "ModelScope" if ms["spec"].get("modelRegistry") == "modelscope" else "Hugging Face"
    namespace = ms["metadata"]["namespace"]
    try:
        await store.get(SECRETS, namespace, name)
    except LLMOSError as exc:
        if exc.reason != Reason.NOT_FOUND:
            raise
        raise EngineError(
            f"spec.hfTokenSecret: Secret {name!r} does not exist in namespace "
            f"{namespace!r}: create it with the {hub} token in "
            f"spec.stringData.{HF_TOKEN_KEY}",
            Reason.NOT_FOUND,
        ) from exc
    data = (await store.get_secret(SECRETS, namespace, name)).get("data") or {}
    token = data.get(HF_TOKEN_KEY)
    if not token:
        raise EngineError(
            f"spec.hfTokenSecret: Secret {name!r} has no key {HF_TOKEN_KEY!r}: put the "
            f"{hub} token in its spec.stringData.{HF_TOKEN_KEY}",
            Reason.NOT_FOUND,
        )
    return str(token)


async def users_of_secret(store: ResourceStore, event: WatchEvent) -> list[ObjectKey]:
    """The ModelServices in the Secret's namespace that name it in ``hfTokenSecret``."""
    page = await store.list(MODELSERVICES, event.namespace)
    return [
        ObjectKey(event.namespace, ms["metadata"]["name"])
        for ms in page.items
        if ms["spec"].get("hfTokenSecret") == event.name
    ]
