"""``?dryRun=All`` on every write, and DeleteOptions: checked as for real, nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

NS = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices"
MERGE = {"Content-Type": "application/merge-patch+json"}
DRY = {"dryRun": "All"}


@pytest.fixture
def stored(admin: httpx.Client, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    words = request.node.name.removeprefix("test_").replace("[", "_").split("_")
    name = (
        "dry-"
        + "-".join(w for w in words[:4] if w.isalnum()).lower()
        + f"-{abs(hash(request.node.name)) % 10**6}"
    )
    body = {"metadata": {"name": name, "labels": {"v": "1"}}, "spec": {"model": "x", "replicas": 0}}
    response = admin.post(NS, json=body)
    assert response.status_code == 201, response.text
    yield response.json()
    admin.delete(f"{NS}/{name}")


def same(admin: httpx.Client, obj: dict[str, Any]) -> None:
    """The object is stored exactly as before."""
    now = admin.get(f"{NS}/{obj['metadata']['name']}")
    assert now.status_code == 200, now.text
    meta = now.json()["metadata"]  # (its controller writes the status meanwhile)
    for field in ("uid", "generation", "labels"):
        assert meta.get(field) == obj["metadata"].get(field), field
    assert now.json()["spec"] == obj["spec"]


def test_a_dry_patch_answers_the_result_and_stores_nothing(
    admin: httpx.Client, stored: dict[str, Any]
) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    change = {"metadata": {"labels": {"v": "2"}}, "spec": {"model": "changed"}}
    answer = admin.patch(path, json=change, headers=MERGE, params=DRY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"]["model"] == "changed"
    assert answer.json()["metadata"]["labels"] == {"v": "2"}
    same(admin, stored)

    invalid = admin.patch(path, json={"spec": {"replicas": -1}}, headers=MERGE, params=DRY)
    assert invalid.status_code == 422 and "spec.replicas" in invalid.text
    stale = {**change, "metadata": {"resourceVersion": "1"}}
    assert admin.patch(path, json=stale, headers=MERGE, params=DRY).status_code == 409


def test_a_dry_put_and_status_write_store_nothing(
    admin: httpx.Client, stored: dict[str, Any]
) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    # (Not pinned to a version: its controller may write the status meanwhile.)
    meta = {k: v for k, v in stored["metadata"].items() if k != "resourceVersion"}
    replaced = {**stored, "metadata": meta, "spec": {**stored["spec"], "model": "other"}}
    answer = admin.put(path, json=replaced, params=DRY)
    assert answer.status_code == 200 and answer.json()["spec"]["model"] == "other"
    status = admin.put(f"{path}/status", json={"status": {"phase": "DryRun"}}, params=DRY)
    assert status.status_code == 200 and status.json()["status"]["phase"] == "DryRun"
    same(admin, stored)
    assert admin.get(path).json()["status"].get("phase") != "DryRun"

    wiped = admin.put(f"{path}/status", json={"status": []})
    assert wiped.status_code == 422 and "status must be a mapping" in wiped.text


def test_a_dry_delete_keeps_the_object(admin: httpx.Client, stored: dict[str, Any]) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    answer = admin.delete(path, params=DRY)
    assert (
        answer.status_code == 200
        and answer.json()["metadata"]["name"] == stored["metadata"]["name"]
    )
    same(admin, stored)
    assert admin.delete(f"{NS}/no-such-thing", params=DRY).status_code == 404


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "PUT"])
def test_a_bad_dry_run_value_is_refused_before_any_write(
    admin: httpx.Client, stored: dict[str, Any], method: str
) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    body = {"PATCH": {"spec": {"model": "y"}}, "PUT": stored, "DELETE": None}[method]
    headers = MERGE if method == "PATCH" else {}
    answer = admin.request(method, path, json=body, headers=headers, params={"dryRun": "bogus"})
    assert answer.status_code == 400 and "dryRun must be 'All', not 'bogus'" in answer.text
    same(admin, stored)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"preconditions": "x"}, "preconditions must be a mapping"),
        ({"preconditions": [1]}, "preconditions must be a mapping"),
        ([1], "DeleteOptions (a mapping), not list"),
        ({"propagationPolicy": "Bogus"}, "propagationPolicy 'Bogus': use one of"),
        ({"gracePeriodSeconds": -5}, "gracePeriodSeconds -5 must be a whole number"),
    ],
)
def test_bad_delete_options_are_400_and_delete_nothing(
    admin: httpx.Client, stored: dict[str, Any], options: Any, says: str
) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    answer = admin.request("DELETE", path, json=options)
    assert answer.status_code == 400 and says in answer.json()["message"], answer.text
    same(admin, stored)


def test_a_delete_for_another_uid_is_a_conflict(
    admin: httpx.Client, stored: dict[str, Any]
) -> None:
    path = f"{NS}/{stored['metadata']['name']}"
    answer = admin.request("DELETE", path, json={"preconditions": {"uid": "wrong"}})
    assert answer.status_code == 409 and "its uid is" in answer.json()["message"], answer.text
    same(admin, stored)
    mine = {"preconditions": {"uid": stored["metadata"]["uid"]}}
    assert admin.request("DELETE", path, json=mine).status_code == 200


def test_a_dry_create_with_generate_name_shows_a_name(admin: httpx.Client) -> None:
    body = {"metadata": {"generateName": "dr-"}, "spec": {"model": "x", "replicas": 0}}
    answer = admin.post(NS, json=body, params=DRY)
    assert answer.status_code == 200, answer.text
    name = answer.json()["metadata"]["name"]
    assert name.startswith("dr-") and len(name) == 8
    assert admin.get(f"{NS}/{name}").status_code == 404
