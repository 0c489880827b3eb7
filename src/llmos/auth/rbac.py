"""RBAC decisions: may this user do this verb on this kind in this namespace?

Grants come from three places:
- the user's global roles, whose rules hold everywhere;
- RoleTemplateBindings, whose template's rules hold inside one namespace (and on
  that Namespace object itself);
- ``llmos-public``, which every user may read.
``llmos-system`` is reserved: only global rules reach it.
Decisions read informers (memory), never the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmos.auth.builtin import PUBLIC_NAMESPACE, READ, SYSTEM_NAMESPACE
from llmos.controllers.informer import Informer


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user, and the token that proved it."""

    user: str
    global_roles: tuple[str, ...]
    token_name: str
    token_type: str
    scopes: tuple[str, ...] = ("*",)
    must_change_password: bool = False

    @property
    def is_admin(self) -> bool:
        return "admin" in self.global_roles


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str  # plural, or "plural/status"
    namespace: str | None = None  # None: cluster-scoped, or every namespace
    name: str | None = None


def _rule_allows(rule: dict[str, Any], req: Request) -> bool:
    groups = rule.get("apiGroups") or ["*"]
    if "*" not in groups and req.group not in groups:
        return False
    resources = rule.get("resources") or []
    if "*" not in resources and req.resource not in resources:
        return False
    verbs = rule.get("verbs") or []
    if "*" not in verbs and req.verb not in verbs:
        return False
    names = rule.get("resourceNames") or []
    return not names or req.name in names


def _any_allows(rules: Iterable[dict[str, Any]], req: Request) -> bool:
    return any(_rule_allows(rule, req) for rule in rules)


class Authorizer:
    def __init__(
        self, global_roles: Informer, role_templates: Informer, bindings: Informer
    ) -> None:
        self._roles = global_roles
        self._templates = role_templates
        self._bindings = bindings

    def _global_rules(self, principal: Principal) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for role in principal.global_roles:
            obj = self._roles.get(role)
            if obj is not None:
                rules.extend((obj.get("spec") or {}).get("rules") or [])
        return rules

    def _namespace_rules(self, principal: Principal, namespace: str) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for binding in self._bindings.values():
            spec = binding.get("spec") or {}
            if binding["metadata"].get("namespace") != namespace:
                continue
            if spec.get("user") != principal.user:
                continue
            template = self._templates.get(spec.get("roleTemplate", ""))
            if template is not None:
                rules.extend((template.get("spec") or {}).get("rules") or [])
        return rules

    def bound_namespaces(self, principal: Principal) -> set[str]:
        return {
            b["metadata"].get("namespace", "")
            for b in self._bindings.values()
            if (b.get("spec") or {}).get("user") == principal.user
        }

    def allows(self, principal: Principal, req: Request, namespaced: bool) -> bool:
        if _any_allows(self._global_rules(principal), req):
            return True
        if (
            req.group == "management.llmos.ai"
            and req.resource == "users"
            and (req.name == principal.user and req.verb in READ)
        ):
            return True
        if not namespaced:
            # A namespace binding also covers the Namespace object it is bound in.
            if req.group == "management.llmos.ai" and req.resource == "namespaces" and req.name:
                if req.name == SYSTEM_NAMESPACE:
                    return False
                if req.name == PUBLIC_NAMESPACE and req.verb == "get":
                    return True
                return _any_allows(self._namespace_rules(principal, req.name), req)
            return False
        if req.namespace is None:
            return False
        return self._allows_in(principal, req, req.namespace)

    def _allows_in(self, principal: Principal, req: Request, namespace: str) -> bool:
        if namespace == SYSTEM_NAMESPACE:
            return False
        if namespace == PUBLIC_NAMESPACE and req.verb in READ:
            return True
        return _any_allows(self._namespace_rules(principal, namespace), req)

    def namespaces_allowed(self, principal: Principal, req: Request) -> set[str] | None:
        """For a list or watch across namespaces: None if all, else the namespaces allowed."""
        if _any_allows(self._global_rules(principal), req):
            return None
        candidates = self.bound_namespaces(principal) | {PUBLIC_NAMESPACE}
        return {ns for ns in candidates if self._allows_in(principal, req, ns)}
