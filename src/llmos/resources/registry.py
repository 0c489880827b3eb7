"""The table of every kind the API serves, and lookups by path or by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llmos.resources import management, ml, node
from llmos.resources.meta import Resource


@dataclass(frozen=True)
class KindInfo:
    """How one kind is addressed: its group, version, plural and scope."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...]
    label_names: bool
    model: type[Resource]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def resource(self) -> str:
        """The store key for the kind: ``plural.group``, as Kubernetes names CRDs."""
        return f"{self.plural}.{self.group}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def kube_plural(self) -> str:
        """The plural of the kind's CRD in cluster mode.

        Kubernetes reads ``/apis/{group}/{version}/namespaces/{name}`` as a namespace
        prefix, so a cluster-scoped custom resource named ``namespaces`` cannot be
        addressed by name: LLMOS's Namespace is ``llmosnamespaces`` there.
        """
        return "llmosnamespaces" if self.plural == "namespaces" else self.plural

    @property
    def kube_resource(self) -> str:
        """The name of the kind's CRD in cluster mode (``{kube_plural}.{group}``)."""
        return f"{self.kube_plural}.{self.group}"


def _info(model: type[Resource]) -> KindInfo:
    return KindInfo(
        group=model.group,
        version=model.version,
        kind=model.__name__,
        plural=model.plural,
        namespaced=model.namespaced,
        short_names=model.short_names,
        label_names=model.label_names,
        model=model,
    )


ALL_KINDS: tuple[KindInfo, ...] = tuple(
    _info(model)
    for model in (
        management.Namespace,
        management.User,
        management.GlobalRole,
        management.RoleTemplate,
        management.RoleTemplateBinding,
        management.Token,
        management.Setting,
        management.Secret,
        ml.ModelService,
        ml.Notebook,
        ml.MLCluster,
        ml.Volume,
        ml.VolumeSnapshot,
        node.Node,
        node.GPUDevice,
        node.Event,
    )
)


class Registry:
    """Finds a kind by its REST path segments or by any name a user may type."""

    def __init__(self, kinds: Iterable[KindInfo] = ALL_KINDS) -> None:
        self.kinds = tuple(kinds)
        self._by_path = {(k.group, k.version, k.plural): k for k in self.kinds}
        self._by_kind = {k.kind: k for k in self.kinds}
        self._by_resource = {k.resource: k for k in self.kinds}

    def by_path(self, group: str, version: str, plural: str) -> KindInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, kind: str) -> KindInfo | None:
        return self._by_kind.get(kind)

    def by_resource(self, resource: str) -> KindInfo | None:
        return self._by_resource.get(resource)

    def groups(self) -> dict[str, list[KindInfo]]:
        result: dict[str, list[KindInfo]] = {}
        for info in self.kinds:
            result.setdefault(info.group, []).append(info)
        return result


KIND_REGISTRY = Registry()
