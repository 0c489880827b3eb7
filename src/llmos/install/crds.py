"""CustomResourceDefinitions for every LLMOS kind, made from the kinds' pydantic models.

In cluster mode LLMOS objects live in the cluster's etcd as custom resources,
so ``kubectl get modelservices -A`` works. The installer applies what
:func:`crds` returns; the Kubernetes store expects those CRDs to be there.

A CRD's ``openAPIV3Schema`` must be *structural*: every node has a type, no
``$ref``, ``anyOf`` only as an extra check beside a type, and free-form parts
marked ``x-kubernetes-preserve-unknown-fields``. :func:`structural_schema`
turns a model's JSON schema into that form. It drops defaults (the LLMOS API
applies them before anything is stored, so the API server must not add its
own) and ``additionalProperties: false`` (the API rejects unknown fields
first; Kubernetes would only prune them).
"""

from __future__ import annotations

from typing import Any

from llmos.resources.registry import ALL_KINDS, KindInfo

__all__ = ["CATEGORY", "crd_for", "crds", "structural_schema"]

CATEGORY = "llmos"  # `kubectl get llmos` lists every LLMOS object
# Short names of built-in Kubernetes kinds: an LLMOS kind must not take them over in kubectl.
_CORE_SHORT_NAMES = frozenset({"ns", "no", "ev", "po", "svc", "cm", "sa", "pv", "pvc", "ep"})

# JSON-schema keywords a CRD schema accepts as they are (apiextensions.k8s.io/v1 JSONSchemaProps).
_KEPT = frozenset(
    {
        "description",
        "enum",
        "maximum",
        "minimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
    }
)


def crds() -> list[dict[str, Any]]:
    """One CRD per LLMOS kind, in the registry's order."""
    return [crd_for(info) for info in ALL_KINDS]


def crd_for(info: KindInfo) -> dict[str, Any]:
    """The CRD of one kind: names, scope, schema, status subresource, printer columns."""
    schema = structural_schema(info.model.model_json_schema(mode="validation"))
    properties = schema.setdefault("properties", {})
    # The API server owns metadata's schema; a CRD may not describe it further.
    properties["metadata"] = {"type": "object"}
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    schema["required"] = [key for key in schema.get("required", []) if key in ("spec",)]
    if not schema["required"]:
        del schema["required"]
    version: dict[str, Any] = {
        "name": info.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": _columns(schema),
    }
    if "status" in properties:
        version["subresources"] = {"status": {}}
    names: dict[str, Any] = {
        "kind": info.kind,
        "listKind": f"{info.kind}List",
        "plural": info.kube_plural,
        "singular": info.singular,
        "categories": [CATEGORY],
    }
    short_names = [name for name in info.short_names if name not in _CORE_SHORT_NAMES]
    if short_names:
        names["shortNames"] = short_names
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.kube_resource, "labels": {"app.kubernetes.io/part-of": "llmos"}},
        "spec": {
            "group": info.group,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "names": names,
            "versions": [version],
        },
    }


def structural_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema (with ``$defs``) as a structural CRD schema, refs inlined."""
    definitions: dict[str, Any] = json_schema.get("$defs", {})
    return _convert(json_schema, definitions, ())


def _convert(
    node: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:  # a recursive model: keep whatever is there
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        merged = {**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, definitions, (*seen, name))
    if "anyOf" in node or "oneOf" in node:
        return _union(node, definitions, seen)
    result: dict[str, Any] = {key: node[key] for key in _KEPT if key in node}
    if "const" in node:
        result["enum"] = [node["const"]]
    _bounds(node, result)
    kind = node.get("type")
    if kind is None:  # Any: a value of any type
        result["x-kubernetes-preserve-unknown-fields"] = True
        return result
    if isinstance(kind, list):  # several types in one node
        result["x-kubernetes-preserve-unknown-fields"] = True
        if "null" in kind:
            result["nullable"] = True
        return result
    result["type"] = kind
    if kind == "object":
        _object(node, result, definitions, seen)
    elif kind == "array":
        items = node.get("items")
        if isinstance(items, dict) and items:
            result["items"] = _convert(items, definitions, seen)
        else:  # tuples (prefixItems) or untyped lists
            result["items"] = {"x-kubernetes-preserve-unknown-fields": True}
    elif kind == "null":
        return {"nullable": True, "x-kubernetes-preserve-unknown-fields": True}
    return result


def _object(
    node: dict[str, Any],
    result: dict[str, Any],
    definitions: dict[str, Any],
    seen: tuple[str, ...],
) -> None:
    properties = node.get("properties")
    extra = node.get("additionalProperties")
    if properties:
        result["properties"] = {
            key: _convert(value, definitions, seen) for key, value in properties.items()
        }
        if extra not in (None, False):  # named fields and open-ended extras together
            result["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict) and extra:
        result["additionalProperties"] = _convert(extra, definitions, seen)
    elif extra is not False:  # dict[str, Any] or a bare object
        result["x-kubernetes-preserve-unknown-fields"] = True


def _union(
    node: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    options = node.get("anyOf") or node.get("oneOf") or []
    nullable = any(option.get("type") == "null" for option in options)
    rest = [option for option in options if option.get("type") != "null"]
    outer = {key: node[key] for key in ("description",) if key in node}
    if len(rest) == 1:
        result = {**_convert(rest[0], definitions, seen), **outer}
    else:
        converted = [_convert(option, definitions, seen) for option in rest]
        types = {option.get("type") for option in converted}
        if types == {"integer", "string"}:
            result = {"x-kubernetes-int-or-string": True, **outer}
        elif (
            len(types) == 1
            and None not in types
            and all(set(option) <= {"type", "enum"} for option in converted)
        ):
            # Literal unions of one type: one enum.
            values = [value for option in converted for value in option.get("enum", [])]
            result = {"type": types.pop(), **outer}
            if values and all("enum" in option for option in converted):
                result["enum"] = values
        else:  # differently typed alternatives (e.g. a quantity: string or number)
            result = {"x-kubernetes-preserve-unknown-fields": True, **outer}
    if nullable:
        result["nullable"] = True
    return result


def _bounds(node: dict[str, Any], result: dict[str, Any]) -> None:
    """JSON schema 2020-12 exclusive bounds are numbers; OpenAPI v3's are flags."""
    if "exclusiveMinimum" in node:
        result["minimum"] = node["exclusiveMinimum"]
        result["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        result["maximum"] = node["exclusiveMaximum"]
        result["exclusiveMaximum"] = True


def _columns(schema: dict[str, Any]) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = []
    status = schema.get("properties", {}).get("status", {}).get("properties", {})
    if "phase" in status:
        columns.append({"name": "Status", "type": "string", "jsonPath": ".status.phase"})
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns
