"""PATCH with a JSON Patch (RFC 6902), as ``kubectl patch --type=json`` sends it.

Each operation applies to the stored object, all or nothing: one that does not apply,
or a result that is not a valid object, is refused and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

NS = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def stored(admin: httpx.Client, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    name = "jp-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    body = {"metadata": {"name": name, "labels": {"v": "1"}}, "spec": {"model": "x", "replicas": 0}}
    response = admin.post(NS, json=body)
    assert response.status_code == 201, response.text
    yield response.json()
    admin.delete(f"{NS}/{name}")


def patch(admin: httpx.Client, obj: dict[str, Any], operations: Any) -> httpx.Response:
    return admin.patch(f"{NS}/{obj['metadata']['name']}", json=operations, headers=JSON_PATCH)


def spec_of(admin: httpx.Client, obj: dict[str, Any]) -> dict[str, Any]:
    now = admin.get(f"{NS}/{obj['metadata']['name']}")
    assert now.status_code == 200, now.text
    return now.json()["spec"]


def test_operations_apply_in_order(admin: httpx.Client, stored: dict[str, Any]) -> None:
    response = patch(
        admin,
        stored,
        [
            {"op": "test", "path": "/spec/replicas", "value": 0},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/metadata/labels/team~1name", "value": "a"},
            {"op": "add", "path": "/spec/env", "value": [{"name": "A", "value": "1"}]},
            {"op": "add", "path": "/spec/env/-", "value": {"name": "B", "value": "2"}},
            {"op": "remove", "path": "/metadata/labels/v"},
        ],
    )
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["spec"]["replicas"] == 2
    assert saved["spec"]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert saved["metadata"]["labels"] == {"team/name": "a"}
    assert int(saved["metadata"]["resourceVersion"]) > int(stored["metadata"]["resourceVersion"])
    assert spec_of(admin, stored) == saved["spec"]


@pytest.mark.parametrize(
    ("operations", "status", "message"),
    [
        (
            [
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "test", "path": "/spec/model", "value": "y"},
            ],
            422,
            "the JSON Patch's test failed",
        ),
        (
            [{"op": "remove", "path": "/spec/nothere"}],
            422,
            "the JSON Patch does not apply",
        ),
        (
            [{"op": "replace", "path": "/spec/replicas", "value": "two"}],
            422,
            "spec.replicas",
        ),
        (
            [{"op": "add", "path": "/spec/unknown", "value": 1}],
            422,
            "unknown field 'spec.unknown'",
        ),
        ([{"op": "replace", "path": "", "value": []}], 422, "other than a mapping"),
        ([{"op": "replace", "value": 1}], 400, "the JSON Patch is invalid"),
    ],
    ids=["failed-test", "missing-path", "wrong-type", "unknown-field", "not-a-mapping", "no-path"],
)
def test_a_patch_that_does_not_apply_changes_nothing(
    admin: httpx.Client,
    stored: dict[str, Any],
    operations: list[dict[str, Any]],
    status: int,
    message: str,
) -> None:
    response = patch(admin, stored, operations)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert spec_of(admin, stored) == stored["spec"]


def test_a_replaced_resource_version_pins_the_patch(
    admin: httpx.Client, stored: dict[str, Any]
) -> None:
    """As for a merge patch: a version the patch names must still be the stored one."""
    stale = str(int(stored["metadata"]["resourceVersion"]) - 1)
    response = patch(
        admin,
        stored,
        [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
            {"op": "replace", "path": "/spec/replicas", "value": 1},
        ],
    )
    assert response.status_code == 409, response.text
    assert spec_of(admin, stored)["replicas"] == 0


def test_dry_run_stores_nothing(admin: httpx.Client, stored: dict[str, Any]) -> None:
    response = admin.patch(
        f"{NS}/{stored['metadata']['name']}",
        json=[{"op": "replace", "path": "/spec/replicas", "value": 4}],
        headers=JSON_PATCH,
        params={"dryRun": "All"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["replicas"] == 4
    assert spec_of(admin, stored)["replicas"] == 0
