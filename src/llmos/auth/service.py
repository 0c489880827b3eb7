"""AuthService: logins, sessions, API keys, bootstrap, and who a token belongs to.

The API and the gateway call :meth:`AuthService.authenticate` on every request;
it answers from memory (informers plus a cache of verified token digests).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.names import random_suffix
from llmos.auth import passwords, tokens
from llmos.auth.bruteforce import LoginThrottle
from llmos.auth.builtin import GLOBAL_ROLES, ROLE_TEMPLATES, SETTINGS
from llmos.auth.errors import AuthError, forbidden, unauthorized
from llmos.auth.rbac import Authorizer, Principal
from llmos.controllers.informer import Informer
from llmos.store.base import ResourceStore

log = logging.getLogger(__name__)

MGMT = "management.llmos.ai/v1"
USERS = "users.management.llmos.ai"
TOKENS = "tokens.management.llmos.ai"
SETTINGS_R = "settings.management.llmos.ai"
GLOBAL_ROLES_R = "globalroles.management.llmos.ai"
ROLE_TEMPLATES_R = "roletemplates.management.llmos.ai"
BINDINGS_R = "roletemplatebindings.management.llmos.ai"
LAST_USED_EVERY = 300.0


def _owner(user: dict[str, Any]) -> dict[str, Any]:
    meta = user["metadata"]
    return {"apiVersion": MGMT, "kind": "User", "name": meta["name"], "uid": meta["uid"]}


class AuthService:
    def __init__(self, store: ResourceStore) -> None:
        self.store = store
        self.users = Informer(store, USERS)
        self.tokens = Informer(store, TOKENS)
        self.settings = Informer(store, SETTINGS_R)
        self.global_roles = Informer(store, GLOBAL_ROLES_R)
        self.role_templates = Informer(store, ROLE_TEMPLATES_R)
        self.bindings = Informer(store, BINDINGS_R)
        self.authorizer = Authorizer(self.global_roles, self.role_templates, self.bindings)
        self.throttle = LoginThrottle()
        self._verified: dict[str, str] = {}  # token digest -> token name
        self._last_used: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.tokens.on_change(self._forget_token)

    @property
    def informers(self) -> tuple[Informer, ...]:
        return (
            self.users,
            self.tokens,
            self.settings,
            self.global_roles,
            self.role_templates,
            self.bindings,
        )

    async def start(self) -> None:
        for informer in self.informers:
            await informer.start()

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        for informer in self.informers:
            await informer.stop()

    def _forget_token(self, event: Any) -> None:
        if event.type == "DELETED":
            self._verified = {d: n for d, n in self._verified.items() if n != event.name}

    def setting(self, name: str) -> str:
        obj = self.settings.get(name)
        if obj is not None:
            spec = obj.get("spec") or {}
            if spec.get("value") not in (None, ""):
                return str(spec["value"])
            if spec.get("default") is not None:
                return str(spec["default"])
        return SETTINGS.get(name, ("", ""))[0]

    # -- bootstrap ---------------------------------------------------------------

    async def bootstrap(self, data_dir: Path, password: str | None = None) -> str | None:
        """Create built-in roles and settings, and the admin user on first start.

        Returns the admin's one-time password when it was just created: ``password``
        if given (cluster mode: every replica has the same one from a Secret), else a
        generated one, kept in ``data_dir/bootstrap-password`` until first login.
        """
        for name, spec in GLOBAL_ROLES.items():
            await self._ensure(GLOBAL_ROLES_R, "GlobalRole", name, {**spec, "builtin": True})
        for name, spec in ROLE_TEMPLATES.items():
            await self._ensure(ROLE_TEMPLATES_R, "RoleTemplate", name, {**spec, "builtin": True})
        for name, (default, description) in SETTINGS.items():
            await self._ensure_setting(name, default, description)
        with contextlib.suppress(LLMOSError):
            await self.store.get(USERS, "", "admin")
            return None
        if password is None:
            password = secrets.token_urlsafe(18)
            path = data_dir / "bootstrap-password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            os.chmod(path, 0o600)
        try:
            await self.store.create(
                USERS,
                self._user_object("admin", ["admin"], must_change=True, display="Default Admin"),
                secret={"passwordHash": passwords.hash_password(password)},
            )
        except LLMOSError as exc:
            if exc.reason != Reason.ALREADY_EXISTS:
                raise
            return None  # another replica of the same cluster created it first
        return password

    async def _ensure(self, resource: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        try:
            current = await self.store.get(resource, "", name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            await self.store.create(resource, self._object(kind, name, spec))
            return
        if current.get("spec") != spec:
            current["spec"] = spec
            await self.store.update(resource, current)

    async def _ensure_setting(self, name: str, default: str, description: str) -> None:
        try:
            current = await self.store.get(SETTINGS_R, "", name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            spec = {"default": default, "description": description}
            await self.store.create(SETTINGS_R, self._object("Setting", name, spec))
            return
        spec = current.get("spec") or {}
        if spec.get("default") != default or spec.get("description") != description:
            current["spec"] = {**spec, "default": default, "description": description}
            await self.store.update(SETTINGS_R, current)

    @staticmethod
    def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": MGMT,
            "kind": kind,
            "metadata": {"name": name, "labels": {}, "annotations": {}},
            "spec": spec,
            "status": {},
        }

    def _user_object(
        self, name: str, roles: list[str], *, must_change: bool, display: str = ""
    ) -> dict[str, Any]:
        spec = {
            "displayName": display,
            "active": True,
            "globalRoles": roles,
            "mustChangePassword": must_change,
        }
        return self._object("User", name, spec)

    # -- login and tokens ----------------------------------------------------------

    async def login(
        self, username: str, password: str, address: str, ttl_seconds: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        wait = self.throttle.retry_after(username, address)
        if wait > 0:
            raise AuthError(
                f"too many failed logins for {username!r}: try again in {int(wait) + 1} s",
                Reason.TOO_MANY_REQUESTS,
                retry_after=wait,
            )
        user = self.users.get(username)
        secret = {}
        if user is not None:
            secret = await self.store.get_secret(USERS, "", username)
        stored = secret.get("passwordHash", "")
        # Hash even for unknown users, so timing does not reveal which names exist.
        ok = passwords.verify_password(stored or _dummy_hash(), password) and bool(stored)
        if not ok or user is None:
            self.throttle.failed(username, address)
            raise AuthError("wrong user name or password", Reason.UNAUTHORIZED)
        if not (user.get("spec") or {}).get("active", True):
            raise forbidden(f"user {username!r} is disabled: ask an administrator to enable it")
        self.throttle.succeeded(username, address)
        max_ttl = int(self.setting("auth-user-session-ttl-minutes") or 720) * 60
        ttl = min(ttl_seconds or max_ttl, max_ttl)
        token, obj = await self.create_token(user, "session", ttl_seconds=ttl)
        status = dict(user.get("status") or {})
        status["lastLoginTime"] = timefmt.rfc3339()
        with contextlib.suppress(LLMOSError):
            await self.store.update_status(USERS, {**user, "status": status})
        return token, obj

    async def create_token(
        self,
        user: dict[str, Any],
        type_: str,
        *,
        ttl_seconds: int | None = None,
        description: str = "",
        scopes: list[str] | None = None,
        name: str | None = None,
        limits: dict[str, int | None] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        secret = tokens.new_secret()
        spec: dict[str, Any] = {
            "userName": user["metadata"]["name"],
            "type": type_,
            "description": description,
            "scopes": scopes or ["*"],
        }
        spec.update({k: v for k, v in (limits or {}).items() if v})
        if ttl_seconds:
            spec["expiresAt"] = timefmt.rfc3339(timefmt.now() + timedelta(seconds=ttl_seconds))
        prefix = "session-" if type_ == "session" else "apikey-"
        meta: dict[str, Any] = {
            "labels": {"llmos.ai/user": user["metadata"]["name"], "llmos.ai/token-type": type_},
            "annotations": {},
            "ownerReferences": [_owner(user)],
        }
        meta["name"] = name or f"{prefix}{random_suffix(10)}"
        obj = {"apiVersion": MGMT, "kind": "Token", "metadata": meta, "spec": spec, "status": {}}
        full = tokens.join(meta["name"], secret)
        created = await self.store.create(TOKENS, obj, secret={"digest": tokens.digest(full)})
        await self.tokens.wait_for(int(created["metadata"]["resourceVersion"]))
        return full, created

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise unauthorized()
        parts = tokens.split(token)
        if parts is None:
            raise unauthorized("malformed token")
        name = parts[0]
        obj = self.tokens.get(name)
        if obj is None:
            raise unauthorized("unknown or revoked token")
        digest = tokens.digest(token)
        if self._verified.get(digest) != name:
            secret = await self.store.get_secret(TOKENS, "", name)
            if not secret.get("digest") or not tokens.matches(secret["digest"], token):
                raise unauthorized("unknown or revoked token")
            self._verified[digest] = name
        spec = obj.get("spec") or {}
        expires = spec.get("expiresAt")
        # An expiry that does not read (stored before it was checked) ends the token too.
        if expires and timefmt.seconds_until(expires) <= 0:
            raise unauthorized("the token has expired")
        user = self.users.get(spec.get("userName", ""))
        if user is None:
            raise unauthorized("the token's user no longer exists")
        user_spec = user.get("spec") or {}
        if not user_spec.get("active", True):
            raise unauthorized(f"user {user['metadata']['name']!r} is disabled")
        self._touch(name)
        return Principal(
            user=user["metadata"]["name"],
            global_roles=tuple(user_spec.get("globalRoles") or ()),
            token_name=name,
            token_type=spec.get("type", "session"),
            scopes=tuple(spec.get("scopes") or ("*",)),
            must_change_password=bool(user_spec.get("mustChangePassword")),
        )

    def _touch(self, name: str) -> None:
        """Record when a token was last used, at most every few minutes."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_used.get(name, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._last_used[name] = loop.time()

        async def write() -> None:
            with contextlib.suppress(LLMOSError):
                obj = await self.store.get(TOKENS, "", name)
                status = dict(obj.get("status") or {})
                status["lastUsedAt"] = timefmt.rfc3339()
                await self.store.update_status(TOKENS, {**obj, "status": status})

        task = loop.create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def revoke(self, token_name: str) -> None:
        with contextlib.suppress(LLMOSError):
            await self.store.delete(TOKENS, "", token_name)
        self._verified = {d: n for d, n in self._verified.items() if n != token_name}

    async def set_password(self, username: str, new_password: str) -> dict[str, Any]:
        min_length = int(self.setting("password-min-length") or 12)
        passwords.check_password_rules(new_password, min_length, "newPassword", "the new password")
        user = await self.store.get(USERS, "", username)
        user["spec"]["mustChangePassword"] = False
        return await self.store.update(
            USERS, user, secret={"passwordHash": passwords.hash_password(new_password)}
        )

    async def check_password(self, username: str, password: str) -> bool:
        secret = await self.store.get_secret(USERS, "", username)
        return passwords.verify_password(secret.get("passwordHash", ""), password)


@functools.cache
def _dummy_hash() -> str:
    return passwords.hash_password(secrets.token_urlsafe(16))
