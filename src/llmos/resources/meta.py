"""Object metadata, conditions and the generic object shape shared by every kind.

Every kind is ``apiVersion``, ``kind``, ``metadata``, ``spec`` and ``status``,
as in Kubernetes. The models here validate what crosses the HTTP boundary;
the store itself deals in plain JSON-able dicts.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmos._lib import timefmt
from llmos._lib.dns import dns1123_subdomain_problem

# A label's name (after its prefix) and value, as Kubernetes has them: ASCII, at most 63.
_QUALIFIED = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def as_sent(value: Any, limit: int | None = None) -> str:
    """A value as the client sent it, in JSON (``true``, ``"2"``), cut to ``limit`` characters."""
    text = json.dumps(value, default=repr)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def is_model_name(text: str) -> bool:
    """Whether ``text`` can be a model's name in a request: 1-253 printable characters, no
    spaces (``smollm2``, ``team-a/smollm2``, ``meta-llama/Llama-3.1-8B-Instruct``)."""
    return 0 < len(text) <= 253 and text.isprintable() and not any(c.isspace() for c in text)


class Strict(BaseModel):
    """Base for every boundary model: unknown fields are an error, not ignored, and a value
    of the wrong JSON type is too (``replicas: true`` or ``"2"`` is refused, not read as a
    number), as the Kubernetes API server refuses them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class OwnerReference(Strict):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


class ObjectMeta(Strict):
    name: str = ""
    generateName: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    ownerReferences: list[OwnerReference] = Field(default_factory=list)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            prefix, _, name = key.rpartition("/")
            problem = dns1123_subdomain_problem(prefix) if "/" in key else None
            if problem or not _QUALIFIED.match(name):
                raise ValueError(
                    f"label key {key!r} is invalid: use up to 63 letters, digits, '-', '_' or "
                    "'.', starting and ending with a letter or digit, after an optional "
                    "prefix that is a DNS name, like example.com/"
                    + (f" (its prefix {problem})" if problem else "")
                )
            if value and not _QUALIFIED.match(value):
                raise ValueError(
                    f"label value {value!r} for {key!r} is invalid: use up to 63 letters, "
                    "digits, '-', '_' or '.', starting and ending with a letter or digit"
                )
        return labels

    @field_validator("finalizers")
    @classmethod
    def _check_finalizers(cls, finalizers: list[str]) -> list[str]:
        for item in finalizers:
            problem = dns1123_subdomain_problem(item.split("/", 1)[0])
            if problem:
                raise ValueError(f"finalizer {item!r} {problem}")
        return finalizers


class Condition(Strict):
    """One observed aspect of an object's state, as in Kubernetes."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None
    observedGeneration: int | None = None


class Status(Strict):
    """The status fields every kind shares."""

    phase: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observedGeneration: int | None = None


class Resource(Strict):
    """Base of every kind. Subclasses set ``spec``/``status`` types and ClassVars."""

    group: ClassVar[str]
    version: ClassVar[str] = "v1"
    plural: ClassVar[str]
    namespaced: ClassVar[bool] = True
    short_names: ClassVar[tuple[str, ...]] = ()
    # Kinds whose names must be DNS-1123 labels (63 chars) rather than subdomains.
    label_names: ClassVar[bool] = False

    apiVersion: str
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def api_version(cls) -> str:
        return f"{cls.group}/{cls.version}"


def set_condition(
    status: dict[str, Any],
    type_: str,
    ok: bool | None,
    reason: str = "",
    message: str = "",
    generation: int | None = None,
) -> bool:
    """Set one condition in a status dict; return True if anything changed.

    ``lastTransitionTime`` moves only when the condition's truth changes, as in
    Kubernetes, so a controller can call this on every reconcile without churn.
    """
    value = "Unknown" if ok is None else ("True" if ok else "False")
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    for existing in conditions:
        if existing.get("type") != type_:
            continue
        changed = (
            existing.get("status") != value
            or existing.get("reason") != reason
            or existing.get("message") != message
            or existing.get("observedGeneration") != generation
        )
        if existing.get("status") != value:
            existing["lastTransitionTime"] = timefmt.rfc3339()
        existing.update(status=value, reason=reason, message=message)
        if generation is not None:
            existing["observedGeneration"] = generation
        return changed
    entry: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timefmt.rfc3339(),
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    conditions.append(entry)
    return True


def get_condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """Return the condition of ``type_`` from an object dict, if present."""
    for condition in (obj.get("status") or {}).get("conditions", []):
        if condition.get("type") == type_:
            return dict(condition)
    return None
