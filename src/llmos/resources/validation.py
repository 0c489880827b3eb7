"""Turn a request body into a valid object dict, or an error that names each field."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from llmos._lib.dns import dns1123_label_problem, dns1123_subdomain_problem
from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos.resources.meta import as_sent
from llmos.resources.ml import PATTERN_WORDS
from llmos.resources.registry import KindInfo


class InvalidObject(LLMOSError):
    """A body that does not fit its kind's schema."""


# What a field of the wrong JSON type should be, by pydantic's error type.
_WANTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def causes_from(error: ValidationError) -> list[Cause]:
    """One cause per pydantic error, with a dotted field path like ``spec.replicas``."""
    return causes_of(error.errors(include_url=False))


def causes_of(errors: Iterable[Any], skip: str | None = None) -> list[Cause]:
    """One cause per pydantic error item (its ``loc`` without ``skip``: FastAPI's "body")."""
    causes: list[Cause] = []
    for item in errors:
        path = ".".join(str(part) for part in item["loc"] if part != skip) or "body"
        kind = item["type"]
        if kind == "extra_forbidden":
            causes.append(Cause(path, f"unknown field {path!r}", "FieldValueNotSupported"))
        elif kind == "missing":
            causes.append(Cause(path, f"{path} is required", "FieldValueRequired"))
        elif kind == "string_pattern_mismatch" and item["ctx"]["pattern"] in PATTERN_WORDS:
            wanted = (
                f"must be {PATTERN_WORDS[item['ctx']['pattern']]}, not {as_sent(item['input'], 40)}"
            )
            causes.append(Cause(path, f"{path}: {wanted}", "FieldValueInvalid"))
        elif kind in _WANTED:
            wanted = f"must be {_WANTED[kind]}, not {as_sent(item['input'], 40)}"
            causes.append(Cause(path, f"{path}: {wanted}", "FieldValueInvalid"))
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            causes.append(Cause(path, f"{path}: {message}", "FieldValueInvalid"))
    return causes


# The store keeps whole numbers as 64-bit integers (SQLite, orjson, Kubernetes' int64).
_INT_RANGE = range(-(2**63), 2**63)


def _number_problems(value: Any, path: str = "") -> list[Cause]:
    """A cause for each number that cannot be stored: past 64 bits, infinite or NaN."""
    problems: list[Cause] = []
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and item not in _INT_RANGE:
            problems.append(
                Cause(where, f"{where}: {item} is too large (whole numbers fit in 64 bits)")
            )
        elif isinstance(item, float) and not math.isfinite(item):
            problems.append(Cause(where, f"{where}: {item} is not a finite number"))
    return sorted(problems, key=lambda c: c.field)


# A generated name is the prefix and 5 random characters, within a label's 63.
GENERATED_SUFFIX = 5
MAX_PREFIX = 63 - GENERATED_SUFFIX


def _prefix_problem(prefix: str, check: Callable[[str], str | None]) -> str | None:
    """Why names made from ``metadata.generateName`` would be invalid; None if they are not."""
    if len(prefix) > MAX_PREFIX:
        return (
            f"metadata.generateName must be at most {MAX_PREFIX} characters (LLMOS adds "
            f"{GENERATED_SUFFIX}), not {len(prefix)}"
        )
    problem = check(prefix + "x" * GENERATED_SUFFIX)
    return (
        f"metadata.generateName {prefix!r}: the names made from it {problem}" if problem else None
    )


def validate_object(info: KindInfo, body: Any) -> dict[str, Any]:
    """Validate ``body`` as ``info``'s kind and return it with defaults filled in."""
    if not isinstance(body, dict):
        raise InvalidObject(
            f"the body must be a {info.kind} object, not {type(body).__name__}",
            Reason.BAD_REQUEST,
            kind=info.kind,
        )
    body.setdefault("apiVersion", info.api_version)
    body.setdefault("kind", info.kind)
    problems: list[Cause] = _number_problems(body)
    if body.get("apiVersion") != info.api_version:
        problems.append(
            Cause(
                "apiVersion", f"apiVersion must be {info.api_version!r}, not {body['apiVersion']!r}"
            )
        )
    if body.get("kind") != info.kind:
        problems.append(Cause("kind", f"kind must be {info.kind!r}, not {body['kind']!r}"))
    try:
        obj = info.model.model_validate(body)
    except ValidationError as exc:
        problems.extend(causes_from(exc))
        obj = None
    raw_meta = body.get("metadata")
    metadata: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = metadata.get("name") or ""
    check = dns1123_label_problem if info.label_names else dns1123_subdomain_problem
    prefix = metadata.get("generateName")
    if isinstance(name, str) and (name or not prefix):
        problem = check(name)
        if problem:
            problems.insert(0, Cause("metadata.name", f"metadata.name {name!r} {problem}"))
    elif isinstance(prefix, str):
        problem = _prefix_problem(prefix, check)
        if problem:
            problems.insert(0, Cause("metadata.generateName", problem))
    if problems or obj is None:
        first = problems[0].message if problems else "invalid object"
        raise InvalidObject(
            f"{info.kind} {name or ''} is invalid: {first}".replace("  ", " "),
            Reason.INVALID,
            causes=problems,
            kind=info.kind,
            name=name,
        )
    return obj.model_dump(mode="json", exclude_none=True)
