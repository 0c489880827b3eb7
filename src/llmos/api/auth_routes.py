"""Login, logout, first-login setup, password changes and API keys.

``/v1-public/*`` needs no token; ``/v1-auth/*`` acts for the caller.
Admins manage every user and token through the resource API as well.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from llmos import __version__
from llmos._lib import timefmt
from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos.api.security import principal
from llmos.api.state import app_state
from llmos.auth.credentials import SESSION_COOKIE
from llmos.auth.errors import forbidden, unauthorized
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as RbacRequest
from llmos.resources.management import (
    MAX_REQUESTS_PER_MINUTE,
    MAX_TOKENS_PER_MINUTE,
    check_scopes,
)

public = APIRouter(prefix="/v1-public", tags=["auth"])
private = APIRouter(prefix="/v1-auth", tags=["auth"])
TOKENS = "tokens.management.llmos.ai"
MAX_KEY_TTL_MINUTES = 100 * 366 * 24 * 60  # a century: longer is "never", leave ttlMinutes out
USERS = "users.management.llmos.ai"
SETTINGS = "settings.management.llmos.ai"


class Body(BaseModel):
    """A request body: unknown fields and values of the wrong JSON type are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LoginRequest(Body):
    username: str = Field(min_length=1, max_length=253)
    password: str = Field(min_length=1, max_length=256)
    ttlSeconds: int | None = Field(
        default=None, ge=1, description="Shorter than the session TTL setting, if given."
    )
    setCookie: bool = Field(
        default=False,
        description="Also set the dashboard's HttpOnly session cookie (browsers only).",
    )


class LoginResponse(BaseModel):
    token: str
    tokenName: str
    expiresAt: str | None
    user: str
    mustChangePassword: bool


class FirstLoginRequest(Body):
    newPassword: str
    serverUrl: str

    @field_validator("serverUrl")
    @classmethod
    def _url(cls, value: str) -> str:
        url = urlparse(value)
        if url.scheme != "https" or not url.netloc:
            raise ValueError(f"must be an https URL like https://llmos.example.com, not {value!r}")
        return value.rstrip("/")


class PasswordRequest(Body):
    currentPassword: str
    newPassword: str


class APIKeyRequest(Body):
    description: str = Field(default="", max_length=1024)
    ttlMinutes: int | None = Field(
        default=None, ge=1, le=MAX_KEY_TTL_MINUTES, description="Expiry; none means never."
    )
    scopes: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=1000)
    requestsPerMinute: int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS_PER_MINUTE, description="Gateway rate limit."
    )
    tokensPerMinute: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_PER_MINUTE, description="Gateway token limit."
    )

    _scopes = field_validator("scopes")(classmethod(lambda cls, v: check_scopes(v)))


class APIKeyCreated(BaseModel):
    token: str
    name: str
    expiresAt: str | None
    scopes: list[str]
    note: Literal["Store this key now: it is not shown again."] = (
        "Store this key now: it is not shown again."
    )


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@public.post("/auth/login", response_model=LoginResponse)
async def login(request: Request, response: Response, body: LoginRequest) -> LoginResponse:
    state = app_state(request)
    token, obj = await state.auth.login(
        body.username, body.password, _client_address(request), body.ttlSeconds
    )
    user = state.auth.users.get(body.username) or {}
    if body.setCookie:
        expires = obj["spec"].get("expiresAt")
        max_age = int(timefmt.parse_rfc3339(expires).timestamp() - time.time()) if expires else None
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=max_age,
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
    return LoginResponse(
        token=token,
        tokenName=obj["metadata"]["name"],
        expiresAt=obj["spec"].get("expiresAt"),
        user=body.username,
        mustChangePassword=bool((user.get("spec") or {}).get("mustChangePassword")),
    )


@public.get("/info")
async def info(request: Request) -> dict[str, Any]:
    auth = app_state(request).auth
    return {
        "version": __version__,
        "firstLogin": auth.setting("first-login") == "true",
        "serverUrl": auth.setting("server-url"),
    }


@public.get("/cacerts")
async def cacerts(request: Request) -> Response:
    pem = app_state(request).ca_cert.read_bytes()
    return Response(pem, media_type="application/x-pem-file")


@private.post("/logout")
async def logout(
    request: Request, response: Response, who: Principal = Depends(principal)
) -> dict[str, str]:
    await app_state(request).auth.revoke(who.token_name)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return {"status": "logged out"}


@private.get("/me")
async def me(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    state = app_state(request)
    user = state.auth.users.get(who.user) or {}
    token = state.auth.tokens.get(who.token_name) or {}
    return {
        "user": who.user,
        "displayName": (user.get("spec") or {}).get("displayName", ""),
        "globalRoles": list(who.global_roles),
        "mustChangePassword": who.must_change_password,
        # Those a role binding names; allNamespaces where a global role covers every one.
        "namespaces": sorted(state.auth.authorizer.bound_namespaces(who)),
        "allNamespaces": state.auth.authorizer.allows(
            who, RbacRequest("create", "ml.llmos.ai", "modelservices"), namespaced=True
        ),
        "token": {
            "name": who.token_name,
            "type": who.token_type,
            "expiresAt": (token.get("spec") or {}).get("expiresAt"),
        },
    }


@private.post("/first-login")
async def first_login(
    request: Request, body: FirstLoginRequest, who: Principal = Depends(principal)
) -> dict[str, Any]:
    state = app_state(request)
    auth = state.auth
    if not who.is_admin or auth.setting("first-login") != "true":
        raise forbidden(
            "first-login setup is done already (or you are not an admin): change your "
            "password with POST /v1-auth/password"
        )
    await auth.set_password(who.user, body.newPassword)
    for name, value in (("server-url", body.serverUrl), ("first-login", "false")):
        setting = await state.store.get(SETTINGS, "", name)
        setting["spec"]["value"] = value
        saved = await state.store.update(SETTINGS, setting)
        await auth.settings.wait_for(int(saved["metadata"]["resourceVersion"]))
    if state.bootstrap_password_file is not None:
        with contextlib.suppress(FileNotFoundError):
            state.bootstrap_password_file.unlink()
    saved_user = await state.store.get(USERS, "", who.user)
    await auth.users.wait_for(int(saved_user["metadata"]["resourceVersion"]))
    return {"status": "ok", "serverUrl": body.serverUrl}


@private.post("/password")
async def change_password(
    request: Request, body: PasswordRequest, who: Principal = Depends(principal)
) -> dict[str, Any]:
    auth = app_state(request).auth
    if not await auth.check_password(who.user, body.currentPassword):
        raise LLMOSError(
            "currentPassword is wrong",
            Reason.FORBIDDEN,
            causes=[Cause("currentPassword", "does not match")],
        )
    if body.currentPassword == body.newPassword:
        raise LLMOSError(
            "the new password must differ from the current one",
            Reason.INVALID,
            causes=[Cause("newPassword", "same as current")],
        )
    saved = await auth.set_password(who.user, body.newPassword)
    await auth.users.wait_for(int(saved["metadata"]["resourceVersion"]))
    # Other sessions of this user end: a changed password should lock them out.
    for token in auth.tokens.values():
        spec = token.get("spec") or {}
        name = token["metadata"]["name"]
        mine = spec.get("userName") == who.user and spec.get("type") == "session"
        if mine and name != who.token_name:
            await auth.revoke(name)
    return {"status": "ok"}


def _key_view(token: dict[str, Any]) -> dict[str, Any]:
    spec = token.get("spec") or {}
    status = token.get("status") or {}
    return {
        "name": token["metadata"]["name"],
        "user": spec.get("userName"),
        "description": spec.get("description", ""),
        "scopes": spec.get("scopes", ["*"]),
        "requestsPerMinute": spec.get("requestsPerMinute"),
        "tokensPerMinute": spec.get("tokensPerMinute"),
        "expiresAt": spec.get("expiresAt"),
        "createdAt": token["metadata"].get("creationTimestamp"),
        "lastUsedAt": status.get("lastUsedAt"),
    }


@private.get("/apikeys")
async def list_apikeys(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    auth = app_state(request).auth
    keys = [
        _key_view(t)
        for t in auth.tokens.values()
        if (t.get("spec") or {}).get("type") == "apikey" and (t["spec"].get("userName") == who.user)
    ]
    return {"items": sorted(keys, key=lambda k: k["createdAt"] or "")}


@private.post("/apikeys", status_code=201, response_model=APIKeyCreated)
async def create_apikey(
    request: Request, body: APIKeyRequest, who: Principal = Depends(principal)
) -> APIKeyCreated:
    auth = app_state(request).auth
    if who.token_type == "apikey":
        raise forbidden("an API key cannot create API keys: log in with a password first")
    user = auth.users.get(who.user)
    if user is None:
        raise unauthorized("the user no longer exists")
    token, obj = await auth.create_token(
        user,
        "apikey",
        ttl_seconds=body.ttlMinutes * 60 if body.ttlMinutes else None,
        description=body.description,
        scopes=body.scopes,
        limits={
            "requestsPerMinute": body.requestsPerMinute,
            "tokensPerMinute": body.tokensPerMinute,
        },
    )
    return APIKeyCreated(
        token=token,
        name=obj["metadata"]["name"],
        expiresAt=obj["spec"].get("expiresAt"),
        scopes=obj["spec"]["scopes"],
    )


@private.get("/usage")
async def usage(
    request: Request, all_users: bool = False, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """Tokens used through the gateway, per API key and model (since the server started)."""
    if all_users and not who.is_admin:
        raise forbidden("only administrators may see every user's usage")
    meter = app_state(request).usage
    items = meter.report(None if all_users else who.user) if meter else []
    return {"items": items}


@private.delete("/apikeys/{name}")
async def delete_apikey(
    request: Request, name: str, who: Principal = Depends(principal)
) -> dict[str, str]:
    auth = app_state(request).auth
    token = auth.tokens.get(name)
    spec = (token or {}).get("spec") or {}
    if (
        token is None
        or spec.get("type") != "apikey"
        or (spec.get("userName") != who.user and not who.is_admin)
    ):
        raise LLMOSError(f"API key {name!r} not found", Reason.NOT_FOUND, kind="Token", name=name)
    await auth.revoke(name)
    return {"status": "revoked", "name": name}
