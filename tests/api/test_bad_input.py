"""Bad requests: each gets the exact 4xx expected, a Status that names the problem, no write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

NS = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices"
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}


def ms(name: str = "bad", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"model": "x", "replicas": 0, **spec}}


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    says: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    field: str | None = None
    must_not_exist: str | None = None


CASES = [
    Case(
        "malformed-json",
        "POST",
        NS,
        400,
        "not valid JSON at line 1",
        content=b'{"metadata":',
        headers=JSON,
    ),
    Case(
        "malformed-yaml",
        "POST",
        NS,
        400,
        "not valid YAML",
        content=b"metadata: [unclosed\n",
        headers=YAML,
    ),
    Case(
        "yaml-aliases",
        "POST",
        NS,
        400,
        "anchors and aliases",
        content=b"a: &x 1\nb: *x\n",
        headers=YAML,
    ),
    Case("body-is-a-list", "POST", NS, 400, "must be a ModelService object", json=[1, 2]),
    Case("empty-body", "POST", NS, 400, "body is empty", content=b"", headers=JSON),
    Case(
        "unknown-kind",
        "GET",
        "/apis/ml.llmos.ai/v1/namespaces/default/widgets",
        404,
        "no resource 'widgets'",
    ),
    Case("unknown-group", "GET", "/apis/nope.io/v1/things", 404, "no resource"),
    Case(
        "unknown-field",
        "POST",
        NS,
        422,
        "unknown field 'spec.bogus'",
        json=ms("unk", bogus=1),
        field="spec.bogus",
        must_not_exist="unk",
    ),
    Case(
        "unknown-top-field",
        "POST",
        NS,
        422,
        "unknown field 'extra'",
        json={**ms("top"), "extra": 1},
        field="extra",
        must_not_exist="top",
    ),
    Case(
        "wrong-type",
        "POST",
        NS,
        422,
        "spec.replicas",
        json=ms("typ", replicas="many"),
        field="spec.replicas",
        must_not_exist="typ",
    ),
    Case(
        "out-of-range",
        "POST",
        NS,
        422,
        "spec.replicas",
        json=ms("rng", replicas=-1),
        field="spec.replicas",
        must_not_exist="rng",
    ),
    Case(
        "bad-enum",
        "POST",
        NS,
        422,
        "spec.engine",
        json=ms("enm", engine="warp"),
        field="spec.engine",
        must_not_exist="enm",
    ),
    Case(
        "bad-quantity",
        "POST",
        NS,
        422,
        "is not a quantity",
        json=ms("qty", resources={"memory": "lots"}),
        field="spec.resources.memory",
        must_not_exist="qty",
    ),
    Case(
        "zero-cpu",  # a limit too: no time at all
        "POST",
        NS,
        422,
        "must be more than 0, not '0'",
        json=ms("cpu0", resources={"cpu": "0"}),
        field="spec.resources.cpu",
        must_not_exist="cpu0",
    ),
    Case(
        "tiny-memory",  # a limit too: nothing could start under it
        "POST",
        NS,
        422,
        "must be at least 1Mi (it is a limit too), not '1m'",
        json=ms("mem1m", resources={"memory": "1m"}),
        field="spec.resources.memory",
        must_not_exist="mem1m",
    ),
    Case(
        "gpus-through-env",
        "POST",
        NS,
        422,
        "CUDA_VISIBLE_DEVICES is set by LLMOS from the GPUs it gives the workload",
        json=ms("gpuenv", env=[{"name": "CUDA_VISIBLE_DEVICES", "value": "0,1,2,3"}]),
        field="spec.env.0.name",
        must_not_exist="gpuenv",
    ),
    Case(
        "engine-key-through-env",
        "POST",
        NS,
        422,
        "API_KEY is set by LLMOS: it is the engine's key, which only the gateway holds",
        json=ms("keyenv", env=[{"name": "HOME", "value": "/x"}, {"name": "API_KEY", "value": "k"}]),
        field="spec.env",
        must_not_exist="keyenv",
    ),
    Case(
        "engine-key-through-args",
        "POST",
        NS,
        422,
        "--api-key is set by LLMOS: each replica gets a key that only the gateway holds",
        json=ms("keyarg", engineArgs=["--max-model-len", "4096", "--api-key=k"]),
        field="spec.engineArgs",
        must_not_exist="keyarg",
    ),
    Case(
        "missing-required",
        "POST",
        NS,
        422,
        "spec.model is required",
        json={"metadata": {"name": "req"}, "spec": {}},
        field="spec.model",
        must_not_exist="req",
    ),
    Case(
        "bad-name",
        "POST",
        NS,
        422,
        "metadata.name 'Bad_Name'",
        json=ms("Bad_Name"),
        field="metadata.name",
    ),
    Case(
        "long-name",
        "POST",
        NS,
        422,
        "no more than 63 characters",
        json=ms("a" * 64),
        field="metadata.name",
    ),
    Case(
        "bad-label",
        "POST",
        NS,
        422,
        "label value",
        json={"metadata": {"name": "lbl", "labels": {"a": "no spaces"}}, "spec": {"model": "x"}},
        must_not_exist="lbl",
    ),
    Case(
        "wrong-kind",
        "POST",
        NS,
        422,
        "kind must be 'ModelService'",
        json={**ms("knd"), "kind": "Notebook"},
        field="kind",
        must_not_exist="knd",
    ),
    Case(
        "namespace-mismatch",
        "POST",
        NS,
        400,
        "does not match the namespace in the URL",
        json={"metadata": {"name": "nsm", "namespace": "other"}, "spec": {"model": "x"}},
        must_not_exist="nsm",
    ),
    Case(
        "no-such-namespace",
        "POST",
        "/apis/ml.llmos.ai/v1/namespaces/ghost/modelservices",
        404,
        "namespace 'ghost' does not exist",
        json=ms("ghosted"),
    ),
    Case(
        "name-mismatch",
        "PUT",
        f"{NS}/one",
        400,
        "does not match the name in the URL",
        json=ms("two"),
    ),
    Case("update-missing", "PUT", f"{NS}/missing", 404, "not found", json=ms("missing")),
    Case("post-to-item", "POST", f"{NS}/thing", 405, "POST creates", json=ms("thing")),
    Case(
        "cluster-kind-with-namespace",
        "POST",
        "/apis/management.llmos.ai/v1/namespaces",
        400,
        "cluster-scoped",
        json={"metadata": {"name": "x1", "namespace": "default"}},
    ),
    Case(
        "unsupported-type",
        "POST",
        NS,
        415,
        "not supported",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "strategic-merge-patch",
        "PATCH",
        f"{NS}/x",
        415,
        "application/strategic-merge-patch+json is not supported for LLMOS kinds: send a "
        "merge patch",
        content=b"{}",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    ),
    Case(
        "json-patch-not-a-list",
        "PATCH",
        f"{NS}/x",
        400,
        "a JSON Patch is a list of operations",
        content=b"{}",
        headers={"Content-Type": "application/json-patch+json"},
    ),
    Case(
        "json-patch-unknown-op",
        "PATCH",
        f"{NS}/x",
        400,
        "the JSON Patch is invalid: Unknown operation 'frob'",
        content=b'[{"op": "frob", "path": "/spec"}]',
        headers={"Content-Type": "application/json-patch+json"},
    ),
    Case("bad-selector", "GET", NS, 400, "labelSelector part", params={"labelSelector": "a in b"}),
    Case("bad-limit", "GET", NS, 400, "limit='ten'", params={"limit": "ten"}),
    Case("bad-continue", "GET", NS, 400, "continue token", params={"continue": "garbage!"}),
    Case(
        "bad-watch-version",
        "GET",
        NS,
        400,
        "resourceVersion='abc'",
        params={"watch": "true", "resourceVersion": "abc"},
    ),
    Case(
        "login-extra-field",
        "POST",
        "/v1-public/auth/login",
        422,
        "unknown field 'role'",
        json={"username": "a", "password": "b", "role": "admin"},
    ),
    Case(
        "login-malformed",
        "POST",
        "/v1-public/auth/login",
        400,
        "not valid JSON",
        content=b"{",
        headers=JSON,
    ),
    Case(
        "login-not-json",
        "POST",
        "/v1-public/auth/login",
        415,
        "content type 'text/plain' is not supported: send application/json",
        content=b'{"username": "a", "password": "b"}',
        headers={"Content-Type": "text/plain"},
    ),
    Case(
        "login-a-list",
        "POST",
        "/v1-public/auth/login",
        400,
        "the body must be a JSON object",
        json=[{"username": "a", "password": "b"}],
    ),
    Case(
        "login-wrong-type",
        "POST",
        "/v1-public/auth/login",
        422,
        'setCookie: must be true or false, not "yes"',
        json={"username": "a", "password": "b", "setCookie": "yes"},
    ),
    Case(
        "login-missing",
        "POST",
        "/v1-public/auth/login",
        422,
        "password is required",
        json={"username": "a"},
    ),
    Case("apikey-bad-ttl", "POST", "/v1-auth/apikeys", 422, "ttlMinutes", json={"ttlMinutes": 0}),
    Case(
        "bad-setting",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/password-min-length",
        422,
        "must be from 8 to 128",
        content=b'{"spec":{"value":"3"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-server-url",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/server-url",
        422,
        "setting server-url must be an https URL",
        json={"spec": {"value": "http://x"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-kube-shm-size",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/kube-shm-size",
        422,
        "setting kube-shm-size: '8GB' is not a quantity",
        json={"spec": {"value": "8GB"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-kube-network-policies",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/kube-network-policies",
        422,
        "setting kube-network-policies must be true or false, not 'maybe'",
        json={"spec": {"value": "maybe"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-kube-model-cache-path",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/kube-model-cache-path",
        422,
        "setting kube-model-cache-path must be an absolute path",
        json={"spec": {"value": "models"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-kube-storage-class",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/kube-storage-class",
        422,
        "setting kube-storage-class 'Fast SSD': ",
        json={"spec": {"value": "Fast SSD"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "bad-setting-kube-ray-image",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/kube-ray-image",
        422,
        "setting kube-ray-image must be an image reference",
        json={"spec": {"value": "ray image"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "user-without-password",
        "POST",
        "/apis/management.llmos.ai/v1/users",
        422,
        "spec.password is required",
        json={"metadata": {"name": "nopass"}, "spec": {}},
    ),
    Case(
        "binding-to-nobody",
        "POST",
        "/apis/management.llmos.ai/v1/namespaces/default/roletemplatebindings",
        422,
        "user 'nobody' does not exist",
        json={
            "metadata": {"name": "b1"},
            "spec": {"user": "nobody", "roleTemplate": "namespace-owner"},
        },
    ),
    Case("unknown-path", "GET", "/nothing/here", 404, "no such path"),
    # Found by fuzzing the API from its OpenAPI document (schemathesis): each was a 500.
    Case(
        "metadata-a-list-in-a-patch",
        "PATCH",
        f"{NS}/x",
        422,
        "metadata must be a mapping",
        content=b'{"metadata": [null, null]}',
        headers={"Content-Type": "application/merge-patch+json"},
        field="metadata",
    ),
    Case(
        "metadata-a-number-in-a-put",
        "PUT",
        f"{NS}/x",
        422,
        "metadata must be a mapping",
        json={"metadata": 1.5, "spec": {"model": "x"}},
        field="metadata",
    ),
    Case(
        "limit-a-unicode-digit",
        "GET",
        NS,
        400,
        "limit='³' must be a whole number",
        params={"limit": "³"},
    ),
    Case(
        "whole-number-past-64-bits",
        "POST",
        NS,
        422,
        "spec.resources.gpu: 1180591620717411303424 is too large (whole numbers fit in 64 bits)",
        content=b"metadata: {name: big}\nspec: {model: x, resources: {gpu: 1180591620717411303424}}\n",
        headers=YAML,
        field="spec.resources.gpu",
        must_not_exist="big",
    ),
    Case(
        "model-no-repository",
        "POST",
        NS,
        422,
        "spec.model 'Not A Repo' is not a huggingface repository: write org/name",
        json=ms("norepo", model="Not A Repo"),
        field="spec.model",
        must_not_exist="norepo",
    ),
    Case(
        "model-no-such-bundled",
        "POST",
        NS,
        422,
        "spec.model 'bundled:smollm3': there is no such bundled model; use bundled:smollm2",
        json=ms("nobundle", model="bundled:smollm3"),
        field="spec.model",
        must_not_exist="nobundle",
    ),
    Case(
        "model-relative-path",
        "POST",
        NS,
        422,
        "spec.model 'relative/path' is not an absolute path",
        json=ms("relpath", model="relative/path", modelRegistry="local"),
        field="spec.model",
        must_not_exist="relpath",
    ),
    Case(
        "dry-run-too",
        "POST",
        NS,
        422,
        "spec.model './here.gguf' is not an absolute path",
        json=ms("dryrel", model="./here.gguf"),
        params={"dryRun": "All"},
        field="spec.model",
    ),
    # A value of the wrong JSON type is refused, not converted (as Kubernetes refuses it).
    Case(
        "boolean-for-a-number",
        "POST",
        NS,
        422,
        "spec.replicas: must be a whole number, not true",
        json=ms("boolrep", replicas=True),
        field="spec.replicas",
        must_not_exist="boolrep",
    ),
    Case(
        "text-for-a-number",
        "POST",
        NS,
        422,
        'spec.replicas: must be a whole number, not "2"',
        json=ms("textrep", replicas="2"),
        field="spec.replicas",
        must_not_exist="textrep",
    ),
    Case(
        "boolean-for-a-quantity",
        "POST",
        NS,
        422,
        "spec.resources.cpu: must be a quantity like 500m, 2, 0.5 or 4Gi, not true",
        json=ms("boolcpu", resources={"cpu": True}),
        field="spec.resources.cpu",
        must_not_exist="boolcpu",
    ),
    Case(
        "number-for-a-string",
        "POST",
        NS,
        422,
        "spec.env.0.value: must be a string, not 1",
        json=ms("numenv", env=[{"name": "A", "value": 1}]),
        field="spec.env.0.value",
        must_not_exist="numenv",
    ),
    Case(
        "float-that-becomes-a-huge-whole-number",
        "POST",
        NS,
        422,
        "spec.resources.gpu: must be a whole number, not 1e+20",
        content=b'{"metadata": {"name": "flt"}, "spec": {"model": "x", "resources": {"gpu": 1e20}}}',
        headers=JSON,
        field="spec.resources.gpu",
        must_not_exist="flt",
    ),
    Case(
        "infinity",
        "POST",
        NS,
        422,
        "spec.resources.cpu: inf is not a finite number",
        content=b"metadata: {name: inf}\nspec: {model: x, resources: {cpu: .inf}}\n",
        headers=YAML,
        field="spec.resources.cpu",
        must_not_exist="inf",
    ),
    Case(
        "apikey-ttl-past-a-century",
        "POST",
        "/v1-auth/apikeys",
        422,
        "ttlMinutes",
        json={"ttlMinutes": 12644737960},
    ),
    Case(
        "apikey-tokens-per-minute-past-64-bits",
        "POST",
        "/v1-auth/apikeys",
        422,
        "tokensPerMinute",
        json={"tokensPerMinute": 99999999999999999999},
    ),
    Case(
        "apikey-scope-not-a-model-name",
        "POST",
        "/v1-auth/apikeys",
        422,
        "scope 'Bad Model!!' is not a model name",
        json={"scopes": ["Bad Model!!"]},
    ),
    # The fuzzer also took the admin role from the admin it ran as, which locks everyone out.
    Case(
        "admin-takes-own-admin-role",
        "PATCH",
        "/apis/management.llmos.ai/v1/users/admin",
        403,
        "you cannot take the 'admin' global role from the user you are logged in as",
        content=b'{"spec":{"globalRoles":["user"]}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "admin-deactivates-self",
        "PATCH",
        "/apis/management.llmos.ai/v1/users/admin",
        403,
        "you cannot deactivate the user you are logged in as",
        content=b'{"spec":{"active":false}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "user-update-with-unknown-role",
        "PATCH",
        "/apis/management.llmos.ai/v1/users/admin",
        422,
        "global role 'nope' does not exist",
        content=b'{"spec":{"globalRoles":["admin","nope"]}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "builtin-role-rules-changed",
        "PATCH",
        "/apis/management.llmos.ai/v1/globalroles/admin",
        403,
        "GlobalRole 'admin' is built in: its rules cannot be changed",
        content=b'{"spec":{"rules":[]}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Case(
        "role-made-builtin",
        "POST",
        "/apis/management.llmos.ai/v1/globalroles",
        422,
        "only LLMOS makes built-in roles",
        json={"metadata": {"name": "fake"}, "spec": {"builtin": True, "rules": []}},
        field="spec.builtin",
    ),
    # Its stateful phase wrote a token's expiresAt as garbage; every use of the token was a 500.
    Case(
        "token-expiry-not-a-time",
        "POST",
        "/apis/management.llmos.ai/v1/tokens",
        422,
        "spec.expiresAt: must be an RFC 3339 time like 2026-12-01T09:00:00Z, not 'soon'",
        json={"metadata": {"name": "t1"}, "spec": {"userName": "admin", "expiresAt": "soon"}},
        field="spec.expiresAt",
    ),
    Case(
        "token-expiry-without-a-zone",
        "POST",
        "/apis/management.llmos.ai/v1/tokens",
        422,
        "must be an RFC 3339 time",
        json={
            "metadata": {"name": "t2"},
            "spec": {"userName": "admin", "expiresAt": "2026-12-01T09:00:00"},
        },
        field="spec.expiresAt",
    ),
    Case(
        "session-ttl-setting-too-long",
        "PATCH",
        "/apis/management.llmos.ai/v1/settings/auth-user-session-ttl-minutes",
        422,
        "at most 527040",
        content=b'{"spec":{"value":"99999999999"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(admin: httpx.Client, case: Case) -> None:
    response = admin.request(
        case.method,
        case.path,
        json=case.json,
        content=case.content,
        headers=case.headers,
        params=case.params,
    )
    assert response.status_code == case.status, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["code"] == case.status
    assert case.says in body["message"], body["message"]
    if case.field:
        fields = [c["field"] for c in body["details"]["causes"]]
        assert case.field in fields
    if case.must_not_exist:
        assert admin.get(f"{NS}/{case.must_not_exist}").status_code == 404


def test_yaml_numbers_for_quantities_are_kept_as_their_text(admin: httpx.Client) -> None:
    """``gpuMemory: 0.5`` in YAML is a number; it means the fraction, as "0.5" does."""
    body = b"""metadata: {name: yamlnum}
spec: {model: x, replicas: 0, resources: {cpu: 1.5, memory: 1073741824, gpuMemory: 0.5}}
"""
    response = admin.post(NS, content=body, headers=YAML)
    assert response.status_code == 201, response.text
    resources = response.json()["spec"]["resources"]
    assert resources == {"cpu": 1.5, "memory": "1073741824", "gpuMemory": "0.5"}
    assert admin.delete(f"{NS}/yamlnum").status_code == 200


def test_body_over_the_limit_is_413(admin: httpx.Client) -> None:
    big = b'{"metadata":{"name":"big"},"spec":{"model":"' + b"x" * (4 * 1024 * 1024) + b'"}}'
    response = admin.post(NS, content=big, headers=JSON)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["message"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    chunked = admin.post(NS, content=chunks(), headers=JSON)
    assert chunked.status_code == 413
    assert admin.get(f"{NS}/big").status_code == 404


def test_no_route_answers_500_to_garbage(admin: httpx.Client) -> None:
    paths = [
        "/apis",
        "/apis/ml.llmos.ai",
        "/apis/ml.llmos.ai/v1",
        NS,
        f"{NS}/x/status",
        f"{NS}/x/logs",
        "/apis/ml.llmos.ai/v1/modelservices/x",
        "/apis/management.llmos.ai/v1/namespaces/default/status/x",
        "/v1-auth/apikeys/nothing",
    ]
    for path in paths:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = admin.request(method, path, content=b"\xff\xfe garbage", headers=JSON)
            assert response.status_code < 500, (method, path, response.text)
            assert response.json()["kind"] == "Status" or response.status_code < 300
