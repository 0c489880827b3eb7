"""RBAC: every role x verb x namespace, allowed and denied, over the real API."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import httpx
import pytest

from factories import bind, create_ms, create_namespace, create_user, modelservice, ms_path
from server import ADMIN_PASSWORD, RunningServer

ROLES = ("admin", "owner", "member", "readonly", "outsider")
NAMESPACES = ("team", "llmos-public", "llmos-system", "elsewhere")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
READ = {"get", "list", "watch"}


def expected(role: str, namespace: str, verb: str) -> bool:
    if role == "admin":
        return True
    if namespace == "team":
        return role in ("owner", "member") or (role == "readonly" and verb in READ)
    if namespace == "llmos-public":
        return verb in READ
    return False


class World:
    def __init__(self, server: RunningServer, admin: httpx.Client) -> None:
        self.server = server
        self.admin = admin
        suffix = uuid.uuid4().hex[:6]
        self.ns = {"team": f"team-{suffix}", "elsewhere": f"else-{suffix}"}
        for real in self.ns.values():
            create_namespace(admin, real)
        self.tokens: dict[str, str] = {"admin": server.login("admin", ADMIN_PASSWORD)}
        templates = {
            "owner": "namespace-owner",
            "member": "namespace-member",
            "readonly": "namespace-readonly",
        }
        for role in ROLES[1:]:
            user = f"{role}-{suffix}"
            create_user(admin, user, f"{user}-password")
            if role in templates:
                bind(admin, self.ns["team"], user, templates[role])
            self.tokens[role] = server.login(user, f"{user}-password")

    def namespace(self, label: str) -> str:
        return self.ns.get(label, label)


@pytest.fixture(scope="module")
def world(server: RunningServer) -> Iterator[World]:
    with server.admin_client() as admin:
        yield World(server, admin)


def attempt(world: World, client: httpx.Client, namespace: str, verb: str) -> int:
    admin = world.admin
    name = f"obj-{uuid.uuid4().hex[:8]}"
    if verb != "create":
        create_ms(admin, namespace, name)
    if verb == "get":
        return client.get(ms_path(namespace, name)).status_code
    if verb == "list":
        return client.get(ms_path(namespace)).status_code
    if verb == "watch":
        with client.stream(
            "GET", ms_path(namespace), params={"watch": "true", "timeoutSeconds": "1"}
        ) as response:
            return response.status_code
    if verb == "create":
        return client.post(ms_path(namespace), json=modelservice(name)).status_code
    if verb == "update":
        current = admin.get(ms_path(namespace, name)).json()
        # Unconditional: the ModelService controller may have touched it since the GET.
        current["metadata"].pop("resourceVersion", None)
        current["metadata"]["labels"] = {"updated": "yes"}  # stays scaled to zero
        return client.put(ms_path(namespace, name), json=current).status_code
    if verb == "patch":
        return client.patch(
            ms_path(namespace, name),
            content=b'{"metadata":{"labels":{"patched":"yes"}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        ).status_code
    return client.delete(ms_path(namespace, name)).status_code


CASES = list(itertools.product(ROLES, NAMESPACES, VERBS))


@pytest.mark.parametrize(("role", "namespace", "verb"), CASES, ids=["-".join(c) for c in CASES])
def test_matrix(world: World, role: str, namespace: str, verb: str) -> None:
    with world.server.client(world.tokens[role]) as client:
        status = attempt(world, client, world.namespace(namespace), verb)
    if expected(role, namespace, verb):
        assert status in (200, 201), f"{role} should be allowed to {verb} in {namespace}"
    else:
        assert status == 403, f"{role} should be denied {verb} in {namespace} (got {status})"


def test_list_across_namespaces_shows_only_what_is_allowed(world: World) -> None:
    create_ms(world.admin, world.namespace("elsewhere"), "hidden")
    create_ms(world.admin, world.namespace("team"), "visible")
    with world.server.client(world.tokens["readonly"]) as client:
        items = client.get("/apis/ml.llmos.ai/v1/modelservices").json()["items"]
    namespaces = {item["metadata"]["namespace"] for item in items}
    assert world.namespace("team") in namespaces
    assert namespaces <= {world.namespace("team"), "llmos-public"}
    with world.server.client(world.tokens["outsider"]) as client:
        items = client.get("/apis/ml.llmos.ai/v1/modelservices").json()["items"]
    assert {item["metadata"]["namespace"] for item in items} <= {"llmos-public"}


def test_users_see_only_their_namespaces(world: World) -> None:
    with world.server.client(world.tokens["member"]) as client:
        names = {
            n["metadata"]["name"]
            for n in client.get("/apis/management.llmos.ai/v1/namespaces").json()["items"]
        }
        assert names == {world.namespace("team"), "llmos-public"}
        assert (
            client.get(
                f"/apis/management.llmos.ai/v1/namespaces/{world.namespace('team')}"
            ).status_code
            == 200
        )
        assert (
            client.get(
                f"/apis/management.llmos.ai/v1/namespaces/{world.namespace('elsewhere')}"
            ).status_code
            == 403
        )
        assert (
            client.delete(
                f"/apis/management.llmos.ai/v1/namespaces/{world.namespace('team')}"
            ).status_code
            == 403
        )
        me = client.get("/v1-auth/me").json()
        assert (me["namespaces"], me["allNamespaces"]) == ([world.namespace("team")], False)
    with world.server.client(world.tokens["admin"]) as client:
        me = client.get("/v1-auth/me").json()
        assert (me["namespaces"], me["allNamespaces"]) == ([], True)  # bound nowhere, yet all


def test_user_creates_a_namespace_and_owns_it(world: World) -> None:
    name = f"mine-{uuid.uuid4().hex[:6]}"
    with world.server.client(world.tokens["outsider"]) as client:
        create_namespace(client, name)
        assert client.post(ms_path(name), json=modelservice("mine")).status_code == 201
        assert client.delete(ms_path(name, "mine")).status_code == 200
        reserved = client.post(
            "/apis/management.llmos.ai/v1/namespaces",
            json={
                "apiVersion": "management.llmos.ai/v1",
                "kind": "Namespace",
                "metadata": {"name": "llmos-system"},
            },
        )
        assert reserved.status_code in (403, 409)
    bindings = world.admin.get(
        f"/apis/management.llmos.ai/v1/namespaces/{name}/roletemplatebindings"
    ).json()["items"]
    assert [b["spec"]["roleTemplate"] for b in bindings] == ["namespace-owner"]
    assert bindings[0]["metadata"]["ownerReferences"][0]["kind"] == "User"


def test_standard_users_cannot_manage_users_or_escalate(world: World) -> None:
    with world.server.client(world.tokens["owner"]) as client:
        assert client.get("/apis/management.llmos.ai/v1/users").status_code == 403
        assert client.get("/apis/management.llmos.ai/v1/users/admin").status_code == 403
        own = client.get("/v1-auth/me").json()["user"]
        mine = client.get(f"/apis/management.llmos.ai/v1/users/{own}")
        assert mine.status_code == 200
        mine_obj = mine.json()
        mine_obj["spec"]["globalRoles"] = ["admin"]
        assert (
            client.put(f"/apis/management.llmos.ai/v1/users/{own}", json=mine_obj).status_code
            == 403
        )
        assert client.get("/apis/management.llmos.ai/v1/tokens").status_code == 403
        grant = client.post(
            f"/apis/management.llmos.ai/v1/namespaces/{world.namespace('elsewhere')}/roletemplatebindings",
            json={
                "metadata": {"name": "sneaky"},
                "spec": {"user": own, "roleTemplate": "namespace-owner"},
            },
        )
        assert grant.status_code == 403
    with world.server.client(world.tokens["member"]) as client:
        own = client.get("/v1-auth/me").json()["user"]
        grant = client.post(
            f"/apis/management.llmos.ai/v1/namespaces/{world.namespace('team')}/roletemplatebindings",
            json={
                "metadata": {"name": "promote"},
                "spec": {"user": own, "roleTemplate": "namespace-owner"},
            },
        )
        assert grant.status_code == 403


def test_binding_takes_effect_at_once_and_revocation_too(world: World) -> None:
    suffix = uuid.uuid4().hex[:6]
    user = f"late-{suffix}"
    create_user(world.admin, user, f"{user}-password")
    token = world.server.login(user, f"{user}-password")
    ns = world.namespace("elsewhere")
    with world.server.client(token) as client:
        assert client.get(ms_path(ns)).status_code == 403
        binding = bind(world.admin, ns, user, "namespace-readonly")
        assert client.get(ms_path(ns)).status_code == 200
        world.admin.delete(
            f"/apis/management.llmos.ai/v1/namespaces/{ns}/roletemplatebindings/{binding['metadata']['name']}"
        ).raise_for_status()
        assert client.get(ms_path(ns)).status_code == 403
