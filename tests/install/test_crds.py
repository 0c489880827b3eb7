"""CRD generation without a cluster: every schema is structural and complete."""

from __future__ import annotations

from typing import Any

from llmos.install.crds import crd_for, crds, structural_schema
from llmos.resources.registry import ALL_KINDS, KIND_REGISTRY


def nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for key, child in schema.get("properties", {}).items():
        found += nodes(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += nodes(schema[key], f"{path}[{key}]")
    return found


def test_one_crd_per_kind_named_after_its_plural_and_group() -> None:
    generated = crds()
    assert [crd["metadata"]["name"] for crd in generated] == [k.kube_resource for k in ALL_KINDS]
    assert "llmosnamespaces.management.llmos.ai" in {crd["metadata"]["name"] for crd in generated}


def test_every_schema_node_is_typed_or_explicitly_open() -> None:
    for crd in crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in nodes(schema):
            assert "$ref" not in node and "anyOf" not in node, (crd["metadata"]["name"], path)
            assert "additionalProperties" not in node or node["additionalProperties"] is not False
            assert not ("properties" in node and "additionalProperties" in node), path
            assert "default" not in node, path  # the LLMOS API owns defaults
            open_ = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
                "x-kubernetes-int-or-string"
            )
            assert node.get("type") or open_, (crd["metadata"]["name"], path, node)


def test_scope_short_names_and_status_subresource() -> None:
    ms = KIND_REGISTRY.by_kind("ModelService")
    namespace = KIND_REGISTRY.by_kind("Namespace")
    assert ms is not None and namespace is not None
    ms_crd, ns_crd = crd_for(ms), crd_for(namespace)
    assert ms_crd["spec"]["scope"] == "Namespaced"
    assert ms_crd["spec"]["names"]["shortNames"] == ["ms"]
    assert ms_crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert ns_crd["spec"]["scope"] == "Cluster"
    assert ns_crd["metadata"]["name"] == "llmosnamespaces.management.llmos.ai"
    assert "shortNames" not in ns_crd["spec"]["names"]  # "ns" stays Kubernetes' own


def test_unions_become_nullable_or_int_or_string() -> None:
    schema = structural_schema(
        {
            "type": "object",
            "properties": {
                "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "c": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
                "d": {"type": "number", "exclusiveMinimum": 0},
                "e": {"type": "object", "additionalProperties": True},
                "f": {"$ref": "#/$defs/F", "description": "an F"},
            },
            "$defs": {"F": {"type": "object", "properties": {"g": {"const": "x"}}}},
        }
    )
    props = schema["properties"]
    assert props["a"] == {"type": "string", "nullable": True}
    assert props["b"] == {"x-kubernetes-int-or-string": True}
    assert props["c"] == {"x-kubernetes-preserve-unknown-fields": True, "nullable": True}
    assert props["d"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert props["e"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["f"]["description"] == "an F"
    assert props["f"]["properties"]["g"] == {
        "x-kubernetes-preserve-unknown-fields": True,
        "enum": ["x"],
    }
