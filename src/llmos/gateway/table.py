"""The routing table: which ready endpoints serve a model name, for a given caller.

Built from a ModelService informer: a model is reachable by its served name
(``spec.servedModelName`` or the object name) or as ``namespace/name``, in
the namespaces the caller may ``get`` modelservices in. Each endpoint counts
its outstanding requests; :meth:`Route.pick` takes the least loaded. With
``keys`` (embedded mode), each endpoint carries its ModelService's engine key,
which the gateway sends upstream (:mod:`llmos.engines.keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmos._lib import timefmt
from llmos.auth.rbac import Authorizer, Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.controllers.informer import Informer
from llmos.engines.base import Engine
from llmos.engines.keys import EngineKeys
from llmos.engines.registry import ENGINES
from llmos.gateway.errors import GatewayError

GROUP = "ml.llmos.ai"


def _epoch(timestamp: str | None) -> int:
    """``creationTimestamp`` as Unix seconds (0 if it is missing or unreadable)."""
    try:
        return int(timefmt.parse_rfc3339(timestamp).timestamp()) if timestamp else 0
    except ValueError:
        return 0


@dataclass
class Endpoint:
    url: str
    outstanding: int = 0
    # The ``Authorization`` value the replica wants (b"Bearer KEY"), or b"" for none.
    authorization: bytes = b""


@dataclass
class Route:
    namespace: str
    name: str
    served_name: str
    created: int  # Unix seconds, as OpenAI's model objects have it
    endpoints: list[Endpoint] = field(default_factory=list)
    # The engine the replicas run (status.engine; None for one LLMOS does not run, an
    # endpoint's) and its spec.engineArgs: looked up once per change, not per request.
    engine: type[Engine] | None = None
    engine_args: tuple[str, ...] = ()
    stopped: bool = False  # scaled to 0 replicas: waiting will not bring one

    @property
    def qualified(self) -> str:
        return f"{self.namespace}/{self.served_name}"

    def refuses(self, api: str) -> str | None:
        """Why this model's engine cannot answer ``api``, or None (unknown engines may try)."""
        return self.engine.refuses(api, self.engine_args) if self.engine else None

    @property
    def stream_usage(self) -> bool:
        """Whether the engine ends a stream with its counts when asked (not so an endpoint's)."""
        return self.engine is not None and self.engine.stream_usage

    def pick(self) -> Endpoint:
        return min(self.endpoints, key=lambda e: e.outstanding)


def model_not_found(model: str) -> GatewayError:
    """The 404 for a model that is not there, or that the caller may not see or use."""
    return GatewayError(
        404,
        f"The model {model!r} does not exist or you do not have access to it. "
        "GET /v1/models lists the models you can use.",
        code="model_not_found",
        param="model",
    )


class RoutingTable:
    def __init__(
        self, informer: Informer, authorizer: Authorizer, keys: EngineKeys | None = None
    ) -> None:
        self.informer = informer
        self.authorizer = authorizer
        self.keys = keys
        self._routes: dict[tuple[str, str], Route] = {}
        self._by_name: dict[str, list[Route]] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._version = 0
        self._rbac: tuple[Informer, ...] | None = None
        self._cache: dict[tuple[str, str, tuple[str, ...]], Route] = {}
        self._cache_stamp: tuple[int, ...] = ()
        self._gone: list[Callable[[str], None]] = []
        self._served: list[Callable[[str], None]] = []
        informer.on_change(self._apply)

    def on_gone(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(namespace/served name)`` when no ModelService serves that name any
        more (deleted, or renamed by its servedModelName): its metrics can go."""
        self._gone.append(callback)

    def on_served(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(namespace/served name)`` whenever a route for that name is set up
        (again): a name that was gone may be counted again."""
        self._served.append(callback)

    def _forget(self, names: set[str]) -> None:
        for name in sorted(names - self._by_name.keys()):
            for callback in self._gone:
                callback(name)

    def cache_until_changed(self, *rbac: Informer) -> None:
        """Cache lookups until the routes or any of ``rbac`` (the authorizer's informers) change."""
        self._rbac = rbac

    def _route(self, ms: dict[str, Any]) -> Route | None:
        meta = ms["metadata"]
        if meta.get("deletionTimestamp"):
            return None
        spec: dict[str, Any] = ms.get("spec") or {}
        status: dict[str, Any] = ms.get("status") or {}
        route = Route(
            meta["namespace"],
            meta["name"],
            str(spec.get("servedModelName") or meta["name"]),
            _epoch(meta.get("creationTimestamp")),
            engine=ENGINES.get(status.get("engine") or ""),
            engine_args=tuple(spec.get("engineArgs") or ()),
            stopped=not spec.get("endpoint") and int(spec.get("replicas", 1)) == 0,
        )
        key = self.keys.for_service(ms) if self.keys else None
        authorization = f"Bearer {key}".encode() if key else b""
        for url in status.get("endpoints") or []:
            # Keep the in-flight counts of endpoints that stay.
            endpoint = self._endpoints.get(url) or Endpoint(url)
            endpoint.authorization = authorization  # a port may pass to another service
            self._endpoints[url] = endpoint
            route.endpoints.append(endpoint)
        return route

    def _index(self, route: Route) -> None:
        for callback in self._served:
            callback(route.qualified)
        self._routes[(route.namespace, route.name)] = route
        self._by_name.setdefault(route.served_name, []).append(route)
        self._by_name.setdefault(route.qualified, []).append(route)

    def _unindex(self, key: tuple[str, str]) -> Route | None:
        old = self._routes.pop(key, None)
        if old is None:
            return None
        for name in (old.served_name, old.qualified):
            remaining = [r for r in self._by_name.get(name, ()) if r is not old]
            if remaining:
                self._by_name[name] = remaining
            else:
                self._by_name.pop(name, None)
        return old

    def _apply(self, event: Any) -> None:
        """Update one route for one change: O(1), not a rebuild of every route."""
        key = (event.namespace, event.name)
        self._version += 1
        old = self._unindex(key)
        if event.type != "DELETED":
            route = self._route(event.object)
            if route is not None:
                self._index(route)
        if old is not None:
            self._forget({old.qualified})

    def rebuild(self) -> None:
        self._version += 1
        before = {route.qualified for route in self._routes.values()}
        self._routes, self._by_name = {}, {}
        for ms in self.informer.values():
            route = self._route(ms)
            if route is not None:
                self._index(route)
        live = {e.url for r in self._routes.values() for e in r.endpoints}
        self._endpoints = {url: e for url, e in self._endpoints.items() if url in live}
        self._forget(before)

    def _visible(self, who: Principal, route: Route) -> bool:
        req = AuthzRequest("get", GROUP, "modelservices", route.namespace, route.name)
        return self.authorizer.allows(who, req, True)

    def visible(self, who: Principal) -> list[Route]:
        return [r for r in self._routes.values() if self._visible(who, r)]

    def lookup(self, model: str, who: Principal) -> Route:
        if self._rbac is None:
            return self._lookup(model, who)
        stamp = (self._version, *[informer.revision for informer in self._rbac])
        if stamp != self._cache_stamp:
            self._cache.clear()
            self._cache_stamp = stamp
        key = (model, who.user, who.global_roles)
        route = self._cache.get(key)
        if route is None:
            route = self._lookup(model, who)
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[key] = route
        return route

    def _lookup(self, model: str, who: Principal) -> Route:
        candidates = [r for r in self._by_name.get(model, ()) if self._visible(who, r)]
        if not candidates:
            raise model_not_found(model)
        if len(candidates) > 1:
            names = ", ".join(sorted(r.qualified for r in candidates))
            raise GatewayError(
                400,
                f"The model name {model!r} is served in several namespaces ({names}): "
                "name it as 'namespace/model'.",
                code="ambiguous_model",
                param="model",
            )
        return candidates[0]
