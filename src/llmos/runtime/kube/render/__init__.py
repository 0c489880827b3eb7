"""LLMOS objects as the Kubernetes objects that run them (cluster mode).

Pure functions, no I/O: each takes an LLMOS object (as the store returns it)
and the :class:`KubeSettings`, and returns the child objects to apply with
server-side apply. Every child carries the ``llmos.ai/kind`` and
``llmos.ai/name`` labels (how the runtime finds the owner of a changed child)
and a controller owner reference to the LLMOS object, so Kubernetes' garbage
collector deletes the children with it.

- ModelService: a StatefulSet (an init container fetches the model into the
  node's model cache; the engine's image serves it on port 8000; GPUs as
  ``nvidia.com/gpu``; ``/dev/shm`` in memory; probes on the engine's health
  path) and a headless Service, whose per-pod addresses the gateway routes to.
  Its pods prefer the nodes whose model cache already holds the model, when
  that restarts no running pod (``cached_on``, :func:`keep_running_placement`).
- Notebook: a StatefulSet of one (none when stopped), a Service, and a PVC for
  its home unless it mounts Volumes.
- Volume: a PVC of the storage class the ``kube-storage-class`` Setting names.
- MLCluster: a KubeRay ``RayCluster``.

Child names carry the kind (``ms-``, ``nb-``, ``vol-``, ``ray-``) so a
ModelService and a Notebook may share a name, as they may in LLMOS.
"""

from llmos.runtime.kube.render.common import (
    KIND_LABEL,
    MANAGED_BY,
    MODEL_CACHE,
    NAME_LABEL,
    NOTEBOOK_PORT,
    SERVER_POD,
    SERVING_PORT,
    KubeSettings,
    Unsupported,
    child_name,
    labels,
    network_policy,
    secret_name,
)
from llmos.runtime.kube.render.serving import (
    TEMPLATE_HASH,
    ModelNotFetchable,
    cache_affinity,
    fetch_source,
    keep_running_placement,
    model_link,
    modelservice,
    serving_engine,
    token_secret_name,
)
from llmos.runtime.kube.render.workloads import (
    home_claim_name,
    mlcluster,
    notebook,
    notebook_path,
    notebook_secret_name,
    volume,
)

__all__ = [
    "KIND_LABEL",
    "MANAGED_BY",
    "MODEL_CACHE",
    "NAME_LABEL",
    "NOTEBOOK_PORT",
    "SERVER_POD",
    "SERVING_PORT",
    "TEMPLATE_HASH",
    "KubeSettings",
    "ModelNotFetchable",
    "Unsupported",
    "cache_affinity",
    "child_name",
    "fetch_source",
    "home_claim_name",
    "keep_running_placement",
    "labels",
    "mlcluster",
    "model_link",
    "modelservice",
    "network_policy",
    "notebook",
    "notebook_path",
    "notebook_secret_name",
    "secret_name",
    "serving_engine",
    "token_secret_name",
    "volume",
]
