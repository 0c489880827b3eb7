"""Writes that used to be taken and then went wrong: each is now refused (or done right) at once."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from factories import create_user
from server import RunningServer

ML = "/apis/ml.llmos.ai/v1/namespaces/default"
MGMT = "/apis/management.llmos.ai/v1"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.mark.parametrize(
    ("path", "prefix", "says"),
    [
        (f"{MGMT}/users", "Evil/", "metadata.generateName 'Evil/': the names made from it"),
        (f"{MGMT}/namespaces", "GEN-", "metadata.generateName 'GEN-': the names made from it"),
        (f"{ML}/modelservices", "x" * 59, "metadata.generateName must be at most 58 characters"),
    ],
)
def test_a_generate_name_that_makes_bad_names_is_refused(
    admin: httpx.Client, path: str, prefix: str, says: str
) -> None:
    body = {"metadata": {"generateName": prefix}, "spec": {"password": "Abcdefgh1234!"}}
    if "modelservices" in path:
        body["spec"] = {"model": "x", "replicas": 0}
    elif "namespaces" in path:
        del body["spec"]
    answer = admin.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["message"]
    assert answer.json()["details"]["causes"][0]["field"] == "metadata.generateName"


def test_a_user_who_generates_a_namespace_name_owns_it(
    server: RunningServer, admin: httpx.Client
) -> None:
    user = f"gen-{uuid.uuid4().hex[:6]}"
    create_user(admin, user, "gen-password-12")
    before = {n["metadata"]["name"] for n in admin.get(f"{MGMT}/namespaces").json()["items"]}
    with server.client(server.login(user, "gen-password-12")) as client:
        made = client.post(f"{MGMT}/namespaces", json={"metadata": {"generateName": "team-"}})
        assert made.status_code == 201, made.text
        name = made.json()["metadata"]["name"]
        assert name.startswith("team-") and len(name) == len("team-") + 5
        assert client.get(f"{MGMT}/namespaces/{name}").status_code == 200  # the owner binding
    after = {n["metadata"]["name"] for n in admin.get(f"{MGMT}/namespaces").json()["items"]}
    assert after - before == {name}
    assert admin.delete(f"{MGMT}/namespaces/{name}").status_code == 200


def test_a_namespace_sent_with_a_deletion_time_still_takes_its_content_with_it(
    admin: httpx.Client,
) -> None:
    name = f"del-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"name": name, "deletionTimestamp": "2020-01-01T00:00:00Z"}}
    made = admin.post(f"{MGMT}/namespaces", json=body)
    assert made.status_code == 201, made.text
    assert "deletionTimestamp" not in made.json()["metadata"]
    assert made.json()["metadata"]["finalizers"] == ["llmos.ai/namespace-content"]
    content = {"metadata": {"name": "left"}, "spec": {"model": "x", "replicas": 0}}
    path = f"/apis/ml.llmos.ai/v1/namespaces/{name}/modelservices"
    assert admin.post(path, json=content).status_code == 201
    assert admin.delete(f"{MGMT}/namespaces/{name}").status_code == 200
    deadline = time.monotonic() + 30
    while admin.get(f"{MGMT}/namespaces/{name}").status_code != 404:
        assert time.monotonic() < deadline, "the namespace stayed"
        time.sleep(0.2)
    assert admin.get(path).json()["items"] == []


@pytest.mark.parametrize(
    ("resources", "says"),
    [
        ({"gpuMemory": "20"}, "'20' is ambiguous: write a size with a unit like 20Gi"),
        ({"gpuMemory": "1m"}, "must be at least 1Mi of GPU memory"),
        ({"cpu": float("nan")}, "spec.resources.cpu: nan is not a finite number"),
    ],
)
def test_resources_that_cannot_work_are_refused_on_create(
    admin: httpx.Client, resources: dict[str, object], says: str
) -> None:
    body = {"metadata": {"name": "res"}, "spec": {"model": "x", "resources": resources}}
    if resources.get("cpu") is not None:  # JSON has no NaN: YAML's .nan
        answer = admin.post(
            f"{ML}/modelservices",
            content=b"metadata: {name: res}\nspec: {model: x, resources: {cpu: .nan}}\n",
            headers={"Content-Type": "application/yaml"},
        )
    else:
        answer = admin.post(f"{ML}/modelservices", json=body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["message"]


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://127.0.0.1:abc/v1", "http://h:99999"])
def test_an_endpoint_that_does_not_parse_is_refused(admin: httpx.Client, endpoint: str) -> None:
    body = {"metadata": {"name": "ep"}, "spec": {"model": "x", "endpoint": endpoint}}
    answer = admin.post(f"{ML}/modelservices", json=body)
    assert answer.status_code == 422, answer.text
    assert f"{endpoint!r} is not a URL" in answer.json()["message"]


def test_a_settings_default_is_checked_as_its_value_is(admin: httpx.Client) -> None:
    path = f"{MGMT}/settings/auth-user-session-ttl-minutes"
    for bad in ("abc", "-5"):
        answer = admin.patch(path, json={"spec": {"default": bad}}, headers=MERGE)
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"]["causes"][0]["field"] == "spec.default"
        assert "(its default) must be a positive whole number" in answer.json()["message"]
    flag = admin.patch(
        f"{MGMT}/settings/first-login", json={"spec": {"value": "true"}}, headers=MERGE
    )
    assert flag.status_code == 403 and "first-login is kept by the server" in flag.text


def test_a_tokens_user_cannot_change(server: RunningServer, admin: httpx.Client) -> None:
    user = f"tok-{uuid.uuid4().hex[:6]}"
    create_user(admin, user, "tok-password-12")
    token = server.login(user, "tok-password-12")
    mine = [t for t in admin.get(f"{MGMT}/tokens").json()["items"] if t["spec"]["userName"] == user]
    path = f"{MGMT}/tokens/{mine[0]['metadata']['name']}"
    answer = admin.patch(path, json={"spec": {"userName": "admin"}}, headers=MERGE)
    assert answer.status_code == 422 and "spec.userName of a token cannot change" in answer.text
    with server.client(token) as client:
        assert client.get("/v1-auth/me").json()["user"] == user


def test_a_built_in_roles_words_may_change_but_not_its_rules(admin: httpx.Client) -> None:
    path = f"{MGMT}/globalroles/user"
    before = admin.get(path).json()["spec"]
    words = admin.patch(path, json={"spec": {"displayName": "People"}}, headers=MERGE)
    assert words.status_code == 200, words.text
    rules = admin.patch(path, json={"spec": {"rules": []}}, headers=MERGE)
    assert rules.status_code == 403 and "its rules cannot be changed" in rules.text
    admin.patch(path, json={"spec": {"displayName": before.get("displayName", "")}}, headers=MERGE)


def test_fields_set_at_creation_stay(admin: httpx.Client) -> None:
    volume = f"{ML}/volumes/fixed-{uuid.uuid4().hex[:6]}"
    name = volume.rsplit("/", 1)[1]
    made = admin.post(f"{ML}/volumes", json={"metadata": {"name": name}, "spec": {}})
    assert made.status_code == 201, made.text
    moved = admin.patch(volume, json={"spec": {"fromSnapshot": "nope"}}, headers=MERGE)
    assert moved.status_code == 422
    assert "spec.fromSnapshot cannot change after creation" in moved.json()["message"]
    assert admin.delete(volume).status_code == 200


def test_a_huge_resource_version_is_a_400(admin: httpx.Client) -> None:
    huge = "99999999999999999999999"
    answer = admin.get(f"{ML}/modelservices", params={"watch": "true", "resourceVersion": huge})
    assert answer.status_code == 400 and "must be a whole number from 0 to" in answer.text
    mux = admin.get("/v1-auth/watch", params={"path": f"{ML}/modelservices", "rv": huge})
    assert mux.status_code == 400
    maybe = admin.get(f"{ML}/modelservices", params={"watch": "maybe"})
    assert maybe.status_code == 400 and "watch='maybe' must be true or false" in maybe.text


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        ({"a/b/c": "x"}, "label key 'a/b/c' is invalid"),
        ({"UPPER/b": "x"}, "(its prefix label 'UPPER' contains upper-case letters)"),
        ({"-x-": "y"}, "label key '-x-' is invalid"),
        ({"app": "-y-"}, "label value '-y-' for 'app' is invalid"),
    ],
)
def test_label_keys_and_values_follow_kubernetes_rules(
    admin: httpx.Client, labels: dict[str, str], says: str
) -> None:
    body = {"metadata": {"name": "labelled", "labels": labels}, "spec": {"model": "x"}}
    answer = admin.post(f"{ML}/modelservices", json=body, params={"dryRun": "All"})
    assert answer.status_code == 422 and says in answer.json()["message"], answer.text


def test_a_field_selector_is_refused_not_ignored(admin: httpx.Client) -> None:
    answer = admin.get(f"{ML}/modelservices", params={"fieldSelector": "metadata.name=p1"})
    assert answer.status_code == 400 and "fieldSelector is not supported" in answer.text


@pytest.mark.parametrize("served", ["", "has space"])
def test_a_served_name_clients_cannot_send_is_refused(admin: httpx.Client, served: str) -> None:
    body = {"metadata": {"name": "served"}, "spec": {"model": "x", "servedModelName": served}}
    answer = admin.post(f"{ML}/modelservices", json=body, params={"dryRun": "All"})
    assert answer.status_code == 422 and "is not a model name clients can send" in answer.text


@pytest.mark.parametrize(
    ("password", "says"),
    [(" " * 16, "must not be only spaces"), ("Abcdefgh1234!\u0000", "must not contain control")],
)
def test_a_password_no_one_can_type_is_refused(
    admin: httpx.Client, password: str, says: str
) -> None:
    body = {"metadata": {"name": "typist"}, "spec": {"password": password}}
    answer = admin.post(f"{MGMT}/users", json=body, params={"dryRun": "All"})
    assert answer.status_code == 422 and f"spec.password {says}" in answer.text, answer.text


def test_head_answers_as_get_without_a_body(admin: httpx.Client) -> None:
    got = admin.get(f"{ML}/modelservices")
    head = admin.head(f"{ML}/modelservices")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert admin.head("/v1-auth/me").status_code == 200
    assert admin.head(f"{ML}/modelservices/no-such-model").status_code == 404


@pytest.mark.parametrize("mount", ["../../etc", "data", "/data/../../etc"])
def test_a_mount_path_must_be_absolute_and_stay_there(admin: httpx.Client, mount: str) -> None:
    volumes = [{"name": "v", "mountPath": mount}]
    body = {"metadata": {"name": "mounted"}, "spec": {"model": "x", "volumes": volumes}}
    answer = admin.post(f"{ML}/modelservices", json=body, params={"dryRun": "All"})
    assert answer.status_code == 422 and "must be an absolute path without '..'" in answer.text


def test_a_role_binding_must_grant_something_new(admin: httpx.Client) -> None:
    """One in llmos-system grants nothing (only global roles reach it); a second one of the
    same role for the same user in the same namespace adds nothing but a row."""
    user = f"rb-{uuid.uuid4().hex[:6]}"
    create_user(admin, user, "rb-password-123")

    def grant(namespace: str, name: str) -> httpx.Response:
        body = {
            "metadata": {"name": name},
            "spec": {"user": user, "roleTemplate": "namespace-member"},
        }
        return admin.post(f"{MGMT}/namespaces/{namespace}/roletemplatebindings", json=body)

    system = grant("llmos-system", f"{user}-a")
    assert system.status_code == 422, system.text
    assert "would grant nothing: only global roles reach that namespace" in system.text
    assert grant("default", f"{user}-a").status_code == 201
    again = grant("default", f"{user}-b")
    assert again.status_code == 409, again.text
    assert again.json()["message"] == (
        f"user {user!r} already has role 'namespace-member' in namespace 'default' "
        f"(role binding '{user}-a')"
    )
    assert admin.get(f"{MGMT}/namespaces/default/roletemplatebindings/{user}-b").status_code == 404
    assert admin.delete(f"{MGMT}/users/{user}").status_code == 200
