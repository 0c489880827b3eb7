"""Admission: per-kind rules applied to a write before it reaches the store.

Like Kubernetes' admission plugins: they may change the object (hash a
password, add an owner reference or a finalizer), reject it with an error
that names the field, or return secret data to keep beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from llmos._lib.dns import dns1123_subdomain_problem
from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos._lib.names import random_suffix
from llmos._lib.quantity import is_whole_number, parse_quantity
from llmos.auth import passwords
from llmos.auth.builtin import PUBLIC_NAMESPACE, RESERVED_NAMESPACES, SYSTEM_NAMESPACE
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.service import TOKENS, AuthService
from llmos.engines.sources import BUNDLED
from llmos.resources.ml import model_problem
from llmos.resources.registry import KindInfo
from llmos.store.base import ResourceStore

NAMESPACE_FINALIZER = "llmos.ai/namespace-content"
NAMESPACES = "namespaces.management.llmos.ai"
USERS = "users.management.llmos.ai"
ROLE_TEMPLATES = "roletemplates.management.llmos.ai"
ROLE_BINDINGS = "roletemplatebindings.management.llmos.ai"
GLOBAL_ROLES = "globalroles.management.llmos.ai"
SECRETS = "secrets.management.llmos.ai"
ML_GROUP = "ml.llmos.ai"
CREATOR_ANNOTATION = "llmos.ai/creator"
VOLUME_FINALIZER = "llmos.ai/volume-protection"
SNAPSHOTS = "volumesnapshots.ml.llmos.ai"
VOLUMES = "volumes.ml.llmos.ai"


def invalid(path: str, message: str) -> LLMOSError:
    return LLMOSError(message, Reason.INVALID, causes=[Cause(path, message)])


@dataclass
class Admitted:
    obj: dict[str, Any]
    secret: dict[str, Any] | None = None
    after_create: list[dict[str, Any]] = field(default_factory=list)


async def check_namespace(store: ResourceStore, namespace: str) -> None:
    try:
        ns = await store.get(NAMESPACES, "", namespace)
    except LLMOSError as exc:
        if exc.reason == Reason.NOT_FOUND:
            raise LLMOSError(
                f"namespace {namespace!r} does not exist: create it first "
                f"(llmos apply -f, or POST /apis/management.llmos.ai/v1/namespaces)",
                Reason.NOT_FOUND,
                kind="Namespace",
                name=namespace,
            ) from exc
        raise
    if ns["metadata"].get("deletionTimestamp"):
        raise forbidden(
            f"namespace {namespace!r} is being deleted: nothing new can be created in it"
        )


def _setting_problem(name: str, value: str) -> str | None:
    if name in ("auth-user-session-ttl-minutes", "password-min-length"):
        if not is_whole_number(value) or int(value) < 1:
            return f"setting {name} must be a positive whole number, not {value!r}"
        if name == "password-min-length" and not 8 <= int(value) <= 128:
            return "setting password-min-length must be from 8 to 128"
        if name == "auth-user-session-ttl-minutes" and int(value) > 366 * 24 * 60:
            return "setting auth-user-session-ttl-minutes must be at most 527040 (a year)"
    if name in ("first-login", "kube-network-policies") and value not in ("true", "false"):
        return f"setting {name} must be true or false, not {value!r}"
    if name in ("server-url", "huggingface-endpoint", "modelscope-endpoint") and value:
        url = urlparse(value)
        # The server itself answers only HTTPS, as the first-login form says.
        schemes = ("https",) if name == "server-url" else ("http", "https")
        if url.scheme not in schemes or not url.netloc:
            kind = "an https URL" if name == "server-url" else "a URL"
            return f"setting {name} must be {kind} like https://llmos.example.com, not {value!r}"
    if name == "kube-shm-size":
        try:
            if parse_quantity(value) < 2**20:
                return f"setting kube-shm-size must be at least 1Mi, not {value!r}"
        except ValueError as exc:
            return f"setting kube-shm-size: {exc}"
    if name == "kube-model-cache-path" and not (value.startswith("/") and ".." not in value):
        return f"setting kube-model-cache-path must be an absolute path, not {value!r}"
    if name == "kube-storage-class" and value and (problem := dns1123_subdomain_problem(value)):
        return f"setting kube-storage-class {value!r}: {problem}"
    if name.endswith("-image") and (not value or any(c.isspace() for c in value)):
        return f"setting {name} must be an image reference like repo/name:tag, not {value!r}"
    return None


def _rules(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Rules as compared: a field left empty is the same as one left out."""
    return [{k: v for k, v in rule.items() if v not in (None, [], "")} for rule in rules or []]


class Admission:
    def __init__(self, store: ResourceStore, auth: AuthService) -> None:
        self.store = store
        self.auth = auth

    async def admit(
        self, info: KindInfo, obj: dict[str, Any], who: Principal, *, creating: bool
    ) -> Admitted:
        admitted = Admitted(obj)
        if info.namespaced and creating:
            await check_namespace(self.store, obj["metadata"]["namespace"])
        if info.group == ML_GROUP:
            # Who made a workload (conditions that name a user read it); kept on updates.
            meta = obj["metadata"]
            creator: str | None = who.user
            if not creating:
                current = await self.store.get(info.resource, meta["namespace"], meta["name"])
                creator = (current["metadata"].get("annotations") or {}).get(CREATOR_ANNOTATION)
            if creator:
                meta.setdefault("annotations", {})[CREATOR_ANNOTATION] = creator
        handler = getattr(self, f"_admit_{info.plural}", None)
        if handler is not None:
            await handler(admitted, who, creating)
        return admitted

    async def admit_delete(self, info: KindInfo, name: str, who: Principal) -> None:
        if info.plural == "namespaces" and name in RESERVED_NAMESPACES:
            raise forbidden(f"namespace {name!r} is reserved by LLMOS and cannot be deleted")
        if info.plural == "users" and name == who.user:
            raise forbidden("you cannot delete the user you are logged in as")
        if info.plural in ("globalroles", "roletemplates"):
            current = await self.store.get(info.resource, "", name)
            if (current.get("spec") or {}).get("builtin"):
                raise forbidden(f"{info.kind} {name!r} is built in and cannot be deleted")

    async def _admit_modelservices(
        self, admitted: Admitted, who: Principal, creating: bool
    ) -> None:
        spec = admitted.obj["spec"]
        model = str(spec.get("model") or "")
        if model.startswith("bundled:") and model.removeprefix("bundled:") not in BUNDLED:
            choices = ", ".join(f"bundled:{name}" for name in BUNDLED)
            problem: str | None = f"{model!r}: there is no such bundled model; use {choices}"
        else:
            problem = model_problem(spec)
        if problem is not None:
            raise invalid("spec.model", f"spec.model {problem}")

    async def _admit_volumes(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        meta, spec = admitted.obj["metadata"], admitted.obj["spec"]
        if creating and VOLUME_FINALIZER not in meta.get("finalizers", []):
            # Held until no workload mounts the volume; the controller removes it.
            meta["finalizers"] = [*meta.get("finalizers", []), VOLUME_FINALIZER]
        source = spec.get("fromSnapshot")
        if not creating:
            await self._fixed(
                VOLUMES, admitted, "fromSnapshot", "it only says what the volume was made from"
            )
            return
        if not source:
            return
        try:
            snapshot = await self.store.get(SNAPSHOTS, meta["namespace"], source)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            raise invalid(
                "spec.fromSnapshot",
                f"VolumeSnapshot {source!r} does not exist in namespace {meta['namespace']!r}",
            ) from exc
        if not (snapshot.get("status") or {}).get("readyToUse"):
            raise invalid(
                "spec.fromSnapshot",
                f"VolumeSnapshot {source!r} is not ready yet: wait for status.readyToUse",
            )

    async def _admit_volumesnapshots(
        self, admitted: Admitted, who: Principal, creating: bool
    ) -> None:
        if not creating:
            await self._fixed(SNAPSHOTS, admitted, "volumeName", "take a new snapshot instead")

    async def _fixed(self, resource: str, admitted: Admitted, name: str, instead: str) -> None:
        """Refuse an update that changes ``spec.<name>``, which is set once, at creation."""
        meta = admitted.obj["metadata"]
        current = await self.store.get(resource, meta.get("namespace") or "", meta["name"])
        was = (current.get("spec") or {}).get(name)
        if admitted.obj["spec"].get(name) != was:
            raise invalid(
                f"spec.{name}",
                f"spec.{name} cannot change after creation (it is {was!r}): {instead}",
            )

    async def _admit_users(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        meta, spec = admitted.obj["metadata"], admitted.obj["spec"]
        for role in spec.get("globalRoles") or []:
            if self.auth.global_roles.get(role) is None:
                raise invalid("spec.globalRoles", f"global role {role!r} does not exist")
        if not creating and meta["name"] == who.user:
            # The way to lock everyone out is an admin's edit of their own user.
            if not spec.get("active", True):
                raise forbidden("you cannot deactivate the user you are logged in as")
            if who.is_admin and "admin" not in (spec.get("globalRoles") or []):
                raise forbidden(
                    "you cannot take the 'admin' global role from the user you are "
                    "logged in as: another administrator can"
                )
        password = spec.pop("password", None)
        if password is None:
            if creating:
                raise invalid("spec.password", "spec.password is required when creating a user")
            return
        min_length = int(self.auth.setting("password-min-length") or 12)
        passwords.check_password_rules(password, min_length, "spec.password", "spec.password")
        admitted.secret = {"passwordHash": passwords.hash_password(password)}

    async def _admit_globalroles(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        await self._keep_builtin(GLOBAL_ROLES, admitted, creating)

    async def _admit_roletemplates(
        self, admitted: Admitted, who: Principal, creating: bool
    ) -> None:
        await self._keep_builtin(ROLE_TEMPLATES, admitted, creating)

    async def _keep_builtin(self, resource: str, admitted: Admitted, creating: bool) -> None:
        """Built-in roles keep their rules (LLMOS relies on them); only their words may change."""
        obj = admitted.obj
        spec = obj["spec"]
        if creating:
            if spec.get("builtin"):
                raise invalid("spec.builtin", "only LLMOS makes built-in roles: leave it out")
            return
        current = (await self.store.get(resource, "", obj["metadata"]["name"]))["spec"]
        if current.get("builtin") and (
            _rules(spec.get("rules")) != _rules(current.get("rules")) or not spec.get("builtin")
        ):
            raise forbidden(
                f"{obj['kind']} {obj['metadata']['name']!r} is built in: its rules cannot be "
                "changed (make a new role with the rules you want)"
            )
        if not current.get("builtin") and spec.get("builtin"):
            raise invalid("spec.builtin", "only LLMOS makes built-in roles: leave it out")

    async def _admit_secrets(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        """Move ``spec.stringData`` into the store's secret side table; keep only key names."""
        meta, spec = admitted.obj["metadata"], admitted.obj["spec"]
        written: dict[str, str] = spec.pop("stringData", None) or {}
        kept: dict[str, str] = {}
        if not creating:
            stored = await self.store.get_secret(SECRETS, meta["namespace"], meta["name"])
            kept = dict(stored.get("data") or {})
        values: dict[str, str] = {}
        for key in spec.get("keys") or []:
            if key in written:
                continue
            if key not in kept:
                raise invalid(
                    "spec.keys",
                    f"spec.keys lists {key!r}, which has no value: set it in spec.stringData",
                )
            values[key] = kept[key]
        values.update(written)
        spec["keys"] = sorted(values)
        if creating or values != kept:
            admitted.secret = {"data": values}

    async def _admit_tokens(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        if creating:
            raise LLMOSError(
                "tokens are issued by the server: create an API key with "
                "POST /v1-auth/apikeys or `llmos apikeys create`",
                Reason.METHOD_NOT_ALLOWED,
            )
        spec = admitted.obj["spec"]
        current = await self.store.get(TOKENS, "", admitted.obj["metadata"]["name"])
        for fixed in ("userName", "type"):
            if spec.get(fixed) != (current.get("spec") or {}).get(fixed):
                raise invalid(
                    f"spec.{fixed}",
                    f"spec.{fixed} of a token cannot change (it is "
                    f"{current['spec'].get(fixed)!r}): issue a new token instead",
                )

    async def _admit_roletemplatebindings(
        self, admitted: Admitted, who: Principal, creating: bool
    ) -> None:
        obj = admitted.obj
        spec, meta = obj["spec"], obj["metadata"]
        if meta["namespace"] == SYSTEM_NAMESPACE:
            raise invalid(
                "metadata.namespace",
                f"a role binding in {SYSTEM_NAMESPACE!r} would grant nothing: only global "
                "roles reach that namespace",
            )
        if self.auth.role_templates.get(spec["roleTemplate"]) is None:
            names = ", ".join(
                sorted(t["metadata"]["name"] for t in self.auth.role_templates.values())
            )
            raise invalid(
                "spec.roleTemplate",
                f"role template {spec['roleTemplate']!r} does not exist: use one of {names}",
            )
        try:
            user = await self.store.get(USERS, "", spec["user"])
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                raise invalid("spec.user", f"user {spec['user']!r} does not exist") from exc
            raise
        refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("kind") != "User"]
        refs.append(
            {
                "apiVersion": "management.llmos.ai/v1",
                "kind": "User",
                "name": user["metadata"]["name"],
                "uid": user["metadata"]["uid"],
            }
        )
        obj["metadata"]["ownerReferences"] = refs
        for other in (await self.store.list(ROLE_BINDINGS, meta["namespace"])).items:
            if (
                other["spec"].get("user") == spec["user"]
                and other["spec"].get("roleTemplate") == spec["roleTemplate"]
                and other["metadata"]["name"] != meta["name"]
            ):
                raise LLMOSError(
                    f"user {spec['user']!r} already has role {spec['roleTemplate']!r} in "
                    f"namespace {meta['namespace']!r} (role binding "
                    f"{other['metadata']['name']!r})",
                    Reason.ALREADY_EXISTS,
                )

    async def _admit_namespaces(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        meta = admitted.obj["metadata"]
        if (
            creating
            and meta.get("name") in (SYSTEM_NAMESPACE, PUBLIC_NAMESPACE)
            and not who.is_admin
        ):
            raise forbidden(f"namespace {meta['name']!r} is reserved by LLMOS")
        if NAMESPACE_FINALIZER not in meta.get("finalizers", []) and (
            creating or not meta.get("deletionTimestamp")
        ):
            meta["finalizers"] = [*meta.get("finalizers", []), NAMESPACE_FINALIZER]
        if creating and not who.is_admin:
            # Whoever creates a namespace owns it: its name is needed now, for the binding.
            if not meta.get("name"):
                meta["name"] = f"{meta.get('generateName') or ''}{random_suffix()}"
            admitted.after_create.append(
                {
                    "apiVersion": "management.llmos.ai/v1",
                    "kind": "RoleTemplateBinding",
                    "metadata": {
                        "name": f"owner-{who.user}",
                        "namespace": meta["name"],
                        "labels": {},
                        "annotations": {},
                    },
                    "spec": {"roleTemplate": "namespace-owner", "user": who.user},
                }
            )

    async def _admit_settings(self, admitted: Admitted, who: Principal, creating: bool) -> None:
        spec = admitted.obj["spec"]
        if admitted.obj["metadata"]["name"] == "first-login" and not creating:
            # Set to false by the first login itself; true again would reopen that route.
            raise forbidden(
                "setting first-login is kept by the server (the first login sets it false): "
                "to set a password, use `llmos users set-password`"
            )
        # The default counts as much as the value: it is what applies while the value is unset.
        for part in ("value", "default"):
            if spec.get(part):
                problem = _setting_problem(admitted.obj["metadata"]["name"], str(spec[part]))
                if problem:
                    where = "" if part == "value" else " (its default)"
                    raise invalid(f"spec.{part}", problem.replace(" must ", f"{where} must ", 1))
