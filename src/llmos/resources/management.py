"""Kinds of ``management.llmos.ai/v1``: namespaces, users, roles, tokens, settings, secrets."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from llmos._lib import timefmt
from llmos.resources.meta import Resource, Status, Strict, is_model_name

GROUP = "management.llmos.ai"
# Words for people; past these they are pasted by mistake (and break the layout).
MAX_DISPLAY_NAME = 256
MAX_DESCRIPTION = 4096
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


class PolicyRule(Strict):
    """Grants ``verbs`` on ``resources`` (plural names) of ``apiGroups``; ``*`` is any."""

    apiGroups: list[str] = Field(default_factory=lambda: ["*"])
    resources: list[str] = Field(min_length=1)
    verbs: list[str] = Field(min_length=1)
    resourceNames: list[str] = Field(default_factory=list)

    @field_validator("verbs")
    @classmethod
    def _known_verbs(cls, verbs: list[str]) -> list[str]:
        for verb in verbs:
            if verb != "*" and verb not in VERBS:
                raise ValueError(f"unknown verb {verb!r}: use one of {', '.join(VERBS)} or '*'")
        return verbs


class NamespaceSpec(Strict):
    displayName: str = Field(default="", max_length=MAX_DISPLAY_NAME)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)


class Namespace(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "namespaces"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("ns",)
    label_names: ClassVar[bool] = True
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: Status = Field(default_factory=Status)


class UserSpec(Strict):
    displayName: str = Field(default="", max_length=MAX_DISPLAY_NAME)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    # Write-only: hashed with argon2 on the way in and never stored or returned here.
    password: str | None = None
    active: bool = True
    globalRoles: list[str] = Field(default_factory=lambda: ["user"])
    mustChangePassword: bool = False


class UserStatus(Status):
    lastLoginTime: str | None = None


class User(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "users"
    namespaced: ClassVar[bool] = False
    label_names: ClassVar[bool] = True
    spec: UserSpec = Field(default_factory=UserSpec)
    status: UserStatus = Field(default_factory=UserStatus)


class RoleSpec(Strict):
    displayName: str = Field(default="", max_length=MAX_DISPLAY_NAME)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    rules: list[PolicyRule] = Field(default_factory=list)
    builtin: bool = False


class GlobalRole(Resource):
    """Rules granted in every namespace and on cluster-scoped kinds."""

    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "globalroles"
    short_names: ClassVar[tuple[str, ...]] = ("gr",)
    namespaced: ClassVar[bool] = False
    spec: RoleSpec = Field(default_factory=RoleSpec)
    status: Status = Field(default_factory=Status)


class RoleTemplate(Resource):
    """Rules granted inside one namespace by a RoleTemplateBinding."""

    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "roletemplates"
    short_names: ClassVar[tuple[str, ...]] = ("rt",)
    namespaced: ClassVar[bool] = False
    spec: RoleSpec = Field(default_factory=RoleSpec)
    status: Status = Field(default_factory=Status)


class RoleTemplateBindingSpec(Strict):
    roleTemplate: str = Field(min_length=1)
    user: str = Field(min_length=1)


class RoleTemplateBinding(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "roletemplatebindings"
    short_names: ClassVar[tuple[str, ...]] = ("rtb",)
    spec: RoleTemplateBindingSpec
    status: Status = Field(default_factory=Status)


# Gateway rate limits past these are typos, not limits.
MAX_REQUESTS_PER_MINUTE = 10**9
MAX_TOKENS_PER_MINUTE = 10**12


def check_scopes(scopes: list[str]) -> list[str]:
    """Each scope is ``*`` or a model's served name (``name`` or ``namespace/name``)."""
    for scope in scopes:
        if not is_model_name(scope):
            raise ValueError(
                f"scope {scope!r} is not a model name: give '*' or served model names "
                "such as 'smollm2' or 'team-a/smollm2' (no spaces)"
            )
    return scopes


def check_time(value: str | None) -> str | None:
    """An RFC 3339 time with its zone, e.g. 2026-12-01T09:00:00Z."""
    if value is None:
        return None
    try:
        zoned = timefmt.parse_rfc3339(value).tzinfo is not None
    except ValueError:
        zoned = False
    if not zoned:
        raise ValueError(f"must be an RFC 3339 time like 2026-12-01T09:00:00Z, not {value!r}")
    return value


class TokenSpec(Strict):
    userName: str = Field(min_length=1)
    type: Literal["session", "apikey"] = "apikey"
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    expiresAt: str | None = None
    # Model names this key may use through the gateway; ["*"] means every model.
    scopes: list[str] = Field(default_factory=lambda: ["*"])
    # Gateway rate limits for this key; None means unlimited.
    requestsPerMinute: int | None = Field(default=None, ge=1, le=MAX_REQUESTS_PER_MINUTE)
    tokensPerMinute: int | None = Field(default=None, ge=1, le=MAX_TOKENS_PER_MINUTE)

    _scopes = field_validator("scopes")(classmethod(lambda cls, v: check_scopes(v)))
    _expires = field_validator("expiresAt")(classmethod(lambda cls, v: check_time(v)))


class TokenStatus(Status):
    lastUsedAt: str | None = None
    expired: bool = False


class Token(Resource):
    """A session or an API key. Only its hash is stored, outside the object."""

    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "tokens"
    namespaced: ClassVar[bool] = False
    spec: TokenSpec
    status: TokenStatus = Field(default_factory=TokenStatus)


class SettingSpec(Strict):
    value: str | None = None
    default: str | None = None
    description: str = Field(default="", max_length=MAX_DESCRIPTION)


class Setting(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "settings"
    namespaced: ClassVar[bool] = False
    spec: SettingSpec = Field(default_factory=SettingSpec)
    status: Status = Field(default_factory=Status)

    @property
    def effective(self) -> str | None:
        return self.spec.value if self.spec.value not in (None, "") else self.spec.default


def _check_secret_keys(keys: list[str]) -> None:
    # Like Kubernetes' Secret keys: usable as file names and (mostly) as env names.
    for key in keys:
        if not 0 < len(key) <= 253 or not all(
            c.isascii() and (c.isalnum() or c in "-_.") for c in key
        ):
            raise ValueError(
                f"secret key {key!r} is invalid: use 1 to 253 letters, digits, '-', '_' or '.'"
            )


class SecretSpec(Strict):
    # Write-only: each value is kept beside the object in the store and never returned.
    stringData: dict[str, str] | None = Field(default=None, json_schema_extra={"writeOnly": True})
    # The keys that hold a value, kept by the server. An update keeps the values of the
    # keys it lists and drops the others, so a merge patch of ``stringData`` adds keys
    # and a PUT without a key removes it.
    keys: list[str] = Field(default_factory=list)

    @field_validator("stringData")
    @classmethod
    def _valid_data_keys(cls, data: dict[str, str] | None) -> dict[str, str] | None:
        _check_secret_keys(list(data or {}))
        return data

    @field_validator("keys")
    @classmethod
    def _valid_keys(cls, keys: list[str]) -> list[str]:
        _check_secret_keys(keys)
        return keys


class Secret(Resource):
    """Values a namespace's workloads use (e.g. a Hugging Face token), never read back."""

    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "secrets"
    spec: SecretSpec = Field(default_factory=SecretSpec)
    status: Status = Field(default_factory=Status)
