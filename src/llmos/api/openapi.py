"""The OpenAPI document at ``/openapi.json``: FastAPI's own routes plus every kind.

The resource routes are generic, so their paths and schemas are written here
from the kind registry, with each kind's pydantic schema as a component.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from llmos import __version__
from llmos.resources.registry import KindInfo, Registry

REF = "#/components/schemas/{model}"
STATUS_REF = {"$ref": "#/components/schemas/Status"}
_STATUS_SCHEMA = {
    "type": "object",
    "description": "An error, as Kubernetes reports one.",
    "properties": {
        "kind": {"type": "string", "const": "Status"},
        "status": {"type": "string"},
        "message": {"type": "string"},
        "reason": {"type": "string"},
        "code": {"type": "integer"},
        "details": {"type": "object"},
    },
}


# RFC 6902: a list of operations.
JSON_PATCH: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string"},
            "from": {"type": "string"},
            "value": {},
        },
    },
}


def _op(info: KindInfo, verb: str, summary: str, body: bool, many: bool = False) -> dict[str, Any]:
    ref = {"$ref": REF.format(model=info.kind)}
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
    op: dict[str, Any] = {
        "tags": [info.group],
        "operationId": f"{verb}{info.kind}",
        "summary": summary,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": schema if many else ref}},
            },
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": STATUS_REF}},
            },
        },
    }
    if body:
        content = {"application/json": {"schema": ref}, "application/yaml": {"schema": ref}}
        if verb.startswith("patch"):
            content = {
                "application/merge-patch+json": {"schema": ref},
                "application/json-patch+json": {"schema": JSON_PATCH},
            }
        op["requestBody"] = {"required": True, "content": content}
    return op


def _params(names: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


_LIST_QUERY: list[tuple[str, dict[str, Any], str]] = [
    ("labelSelector", {"type": "string"}, "Only objects whose labels match, e.g. app=x,tier!=web"),
    ("limit", {"type": "integer", "minimum": 0}, "At most this many items; 'continue' pages on"),
    ("continue", {"type": "string"}, "The metadata.continue of the previous page"),
    ("watch", {"type": "boolean"}, "Stream changes as JSON lines instead of listing"),
    ("resourceVersion", {"type": "string", "pattern": "^[0-9]*$"}, "Watch from this version"),
    ("timeoutSeconds", {"type": "integer", "minimum": 0}, "End a watch after this long"),
]


def _list_params() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        for name, schema, text in _LIST_QUERY
    ]


def build(app: FastAPI, registry: Registry) -> dict[str, Any]:
    spec = get_openapi(
        title="LLMOS API",
        version=__version__,
        description=(
            "Kubernetes-style resource API and auth routes. Send 'Authorization: Bearer "
            "TOKEN' on every route but /v1-public. The OpenAI-compatible gateway under /v1 "
            "follows OpenAI's API reference."
        ),
        routes=app.routes,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Status"] = _STATUS_SCHEMA
    paths = spec.setdefault("paths", {})
    for info in registry.kinds:
        model_schema = info.model.model_json_schema(ref_template=REF)
        for name, sub in model_schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[info.kind] = model_schema
        prefix = f"/apis/{info.api_version}"
        if info.namespaced:
            base = f"{prefix}/namespaces/{{namespace}}/{info.plural}"
            names = ["namespace"]
            paths[f"{prefix}/{info.plural}"] = {
                "get": {
                    **_op(info, "listAll", f"List {info.kind} in all namespaces", False, True),
                    "parameters": _list_params(),
                },
            }
        else:
            base = f"{prefix}/{info.plural}"
            names = []
        paths[base] = {
            "parameters": _params(names),
            "get": {
                **_op(info, "list", f"List or watch {info.kind}", False, True),
                "parameters": _list_params(),
            },
            "post": _op(info, "create", f"Create a {info.kind}", True),
        }
        item = _params([*names, "name"])
        paths[f"{base}/{{name}}"] = {
            "parameters": item,
            "get": _op(info, "read", f"Read a {info.kind}", False),
            "put": _op(info, "replace", f"Replace a {info.kind}", True),
            "patch": _op(info, "patch", f"Patch a {info.kind} (merge patch or JSON Patch)", True),
            "delete": _op(info, "delete", f"Delete a {info.kind}", False),
        }
        paths[f"{base}/{{name}}/status"] = {
            "parameters": item,
            "get": _op(info, "readStatus", f"Read the status of a {info.kind}", False),
            "put": _op(info, "replaceStatus", f"Replace the status of a {info.kind}", True),
            "patch": _op(info, "patchStatus", f"Patch the status of a {info.kind}", True),
        }
    spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    spec["security"] = [{"bearer": []}]
    return spec
