"""Runs embedded mode: the store, auth, controllers and the HTTPS server, in one process.

``llmos server`` calls :func:`run`. Start-up order matters: the store opens,
auth bootstraps (first start only: admin user, roles, settings), informers
sync, this Node registers, controllers start, and only then does ``/readyz``
answer 200. SIGTERM stops it all in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.tls import TLSFiles, ensure_certificates
from llmos._lib.tls import fingerprint as tls_fingerprint
from llmos.api.app import create_app
from llmos.api.collectors import (
    ControllerCollector,
    GPUCollector,
    NodeCollector,
    WorkloadCollector,
    gpu_sampler,
)
from llmos.api.config import ServerConfig
from llmos.api.corked import CorkedHttpToolsProtocol
from llmos.api.dispatch import Dispatch
from llmos.api.leadership import ControllerRun
from llmos.api.state import AppState
from llmos.api.stores import open_store
from llmos.api.workload_proxy import WorkloadProxy
from llmos.api.workloads import cluster_runtime, cluster_workloads, local_workloads
from llmos.auth.builtin import PUBLIC_NAMESPACE, RESERVED_NAMESPACES
from llmos.auth.service import AuthService
from llmos.controllers.downloads import Downloads
from llmos.controllers.event_retention import EventRetention
from llmos.controllers.events import EventRecorder
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDevicePublisher
from llmos.controllers.gpushare import GPUShareWatch
from llmos.controllers.informer import Informer
from llmos.controllers.loop import Controller, Manager
from llmos.controllers.modelservice import MODELSERVICES
from llmos.controllers.namespace import FINALIZER, NAMESPACES, NamespaceReconciler
from llmos.controllers.node import NodeAgent
from llmos.controllers.nodealloc import NodeAllocator
from llmos.controllers.token import TokenReconciler
from llmos.controllers.volume import Storage
from llmos.engines.keys import EngineKeys
from llmos.gateway.history import History
from llmos.gateway.proxy import Gateway
from llmos.gateway.table import RoutingTable
from llmos.gateway.usage import Usage
from llmos.gpu.nvml import NvmlGPUSource
from llmos.gpu.source import FixtureGPUSource, GPUSource
from llmos.runtime.local import LocalRuntime
from llmos.store.base import ResourceStore

log = logging.getLogger(__name__)


class ServerError(LLMOSError):
    """The server cannot start."""


def gpu_source(config: ServerConfig) -> GPUSource:
    """NVML, or the recorded GPUs of ``--gpu-fixture`` (tests and demos)."""
    if config.gpu_fixture is not None:
        return FixtureGPUSource.from_file(config.gpu_fixture)
    return NvmlGPUSource()


def _history_points(config: ServerConfig) -> int:
    """Enough points for an hour of history at the sampling interval (bounded)."""
    return max(60, min(3600, int(3600 / config.metrics_interval)))


class _HTTPSServer(uvicorn.Server):
    """uvicorn's server, minus its signal handling: :func:`run` owns SIGTERM/SIGINT.

    uvicorn re-raises a caught signal once it has stopped serving, which would
    kill the process before the controllers and the store shut down.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so two servers never share one data dir."""
    path = data_dir / "llmos.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise ServerError(
            f"another LLMOS server is already using {data_dir}: stop it first, or start "
            "this one with another --data-dir",
            Reason.CONFLICT,
        ) from exc
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def tls_files(config: ServerConfig) -> TLSFiles:
    generated = ensure_certificates(config.tls_dir, config.tls_sans)
    if config.tls_cert or config.tls_key:
        if not (config.tls_cert and config.tls_key):
            raise ServerError(
                "--tls-cert and --tls-key go together: give both, or neither", Reason.BAD_REQUEST
            )
        for path in (config.tls_cert, config.tls_key, config.tls_ca):
            if path is None:
                continue
            if not path.is_file():
                raise ServerError(f"TLS file {path} does not exist", Reason.BAD_REQUEST)
        # Clients pin what /v1-public/cacerts serves: the CA that signed the
        # certificate if given, else the certificate file (with its chain).
        return TLSFiles(config.tls_ca or config.tls_cert, config.tls_cert, config.tls_key)
    return generated


async def ensure_namespaces(store: ResourceStore) -> None:
    for name in sorted(RESERVED_NAMESPACES):
        with contextlib.suppress(LLMOSError):
            await store.create(
                NAMESPACES,
                {
                    "apiVersion": "management.llmos.ai/v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "labels": {},
                        "annotations": {},
                        "finalizers": [FINALIZER],
                    },
                    "spec": {},
                    "status": {"phase": "Active"},
                },
            )


def announce_password(password: str, path: Path, url: str, ca_fingerprint: str) -> None:
    print(
        "\n"
        "  LLMOS first start: user 'admin' was created with this one-time password:\n\n"
        f"      {password}\n\n"
        f"  It is also in {path} (mode 0600) until first login.\n"
        f"  Log in at {url} (or `llmos login {url}`) to set your own.\n"
        "  The CA that `llmos login` asks you to trust has the SHA-256 fingerprint\n"
        f"      {ca_fingerprint}\n",
        file=sys.stdout,
        flush=True,
    )


async def run(config: ServerConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with data_dir_lock(config.data_dir):
        await _serve(config)


async def ensure_bundled_model(store: ResourceStore) -> None:
    with contextlib.suppress(LLMOSError):
        await store.create(
            MODELSERVICES,
            {
                "apiVersion": "ml.llmos.ai/v1",
                "kind": "ModelService",
                "metadata": {"name": "smollm2", "namespace": PUBLIC_NAMESPACE, "labels": {}},
                "spec": {"model": "bundled:smollm2", "engine": "llama-cpp", "replicas": 1},
                "status": {},
            },
        )


async def _serve(config: ServerConfig) -> None:
    tls = tls_files(config)
    source = gpu_source(config)
    store = await open_store(config)
    auth = AuthService(store)
    manager = Manager()
    controllers = ControllerRun(store, manager, config.node_name)
    gpus = GPUAllocator(store, config.node_name)
    reservations = NodeAllocator(store, config.node_name)
    publisher = GPUDevicePublisher(store, config.node_name, source)
    node = NodeAgent(store, config.node_name, config.data_dir, gpus=publisher)
    cluster = cluster_runtime(config, store, auth.setting)
    # Cluster mode runs no replica here: Kubernetes gives pods their cgroups.
    runtime = LocalRuntime(
        config.data_dir / "runtime", config.data_dir / "logs", cgroups=cluster is None
    )
    downloads = Downloads(config.data_dir / "models")
    models = Informer(store, MODELSERVICES)
    state = AppState(
        config=config,
        store=store,
        auth=auth,
        ca_cert=tls.ca_cert,
        bootstrap_password_file=config.data_dir / "bootstrap-password",
        runtime=runtime,
        workload_runtime=cluster,
    )
    # The per-key totals outlive restarts (GET /v1-auth/usage is accounting).
    usage = Usage(state.metrics, ledger=config.data_dir / "usage.json")
    state.usage = usage
    # Cluster mode's replicas are pods: Kubernetes' scheduler counts what they reserve.
    node_collector = NodeCollector(config.data_dir, reservations if cluster is None else None)
    for collector in (node_collector, WorkloadCollector(runtime, publisher)):
        state.metrics.register(collector)
    state.metrics.register(ControllerCollector(manager))
    history = History(
        usage,
        interval=config.metrics_interval,
        points=_history_points(config),
        sampler=gpu_sampler(publisher, config.node_name),
    )
    state.metrics.register(GPUCollector(publisher))
    state.history = history
    # Embedded mode's engines listen on loopback ports: each wants its key from the gateway.
    keys = None if cluster is not None else EngineKeys.of(config.data_dir)
    routes = RoutingTable(models, auth.authorizer, keys)
    # A model no longer served takes its series and chart history with it: memory stays
    # bounded by the models there are, not by all there ever were.
    routes.on_gone(usage.forget)
    routes.on_gone(history.forget)
    routes.on_served(usage.served)
    gateway = Gateway(auth, routes, usage)
    workloads: WorkloadProxy | None = None
    saving: asyncio.Task[None] | None = None
    try:
        password = await auth.bootstrap(config.data_dir, config.bootstrap_password)
        await ensure_namespaces(store)
        await auth.start()
        await node.start()
        await gpus.sweep()
        await reservations.sweep()
        await runtime.start()
        await models.start()
        gateway.table.rebuild()
        events = EventRecorder(store, f"llmos-server/{config.node_name}")
        manager.run_alongside(
            EventRetention(
                store,
                ttl=config.event_ttl_seconds,
                interval=config.event_sweep_interval,
                per_object=config.events_per_object,
            )
        )
        manager.add(Controller(store, NamespaceReconciler(store, events)))
        manager.add(Controller(store, TokenReconciler(store)))
        if cluster is not None:
            workload_set = await cluster_workloads(manager, store, cluster, events, auth=auth)
        else:
            workload_set = await local_workloads(
                manager,
                store,
                runtime,
                events,
                auth=auth,
                downloads=downloads,
                gpus=gpus,
                node=reservations,
                storage=Storage(config.data_dir),
                keys=keys,
                sandbox=config.workload_sandbox,
                sole=config.store == "sqlite",
            )
            # Shared GPUs: a replica past its share gets a GPUMemoryOverShare Event.
            manager.run_alongside(GPUShareWatch(store, runtime, publisher, events))
        workloads = workload_set.proxy
        # A replica that loses the leader Lease (kube store) stops as on SIGTERM.
        await controllers.start(on_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
        await history.start()
        saving = asyncio.create_task(usage.keep_saved(config.metrics_interval), name="usage")
        if config.serve_bundled_model:
            await ensure_bundled_model(store)
        state.extra["manager"] = manager
        app = Dispatch(create_app(state), gateway, workloads)
        server = _HTTPSServer(
            uvicorn.Config(
                app,
                host=config.bind_address,
                port=config.port,
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                log_config=None,
                access_log=False,
                lifespan="off",
                loop="none",
                # httptools, with a reply's headers and body in one TLS record.
                http=CorkedHttpToolsProtocol,
                ws="websockets-sansio",
                timeout_graceful_shutdown=5,
            )
        )
        host = "127.0.0.1" if config.bind_address in ("0.0.0.0", "::") else config.bind_address
        url = f"https://{host}:{config.port}"
        # What start-up built lives as long as the server: keep it out of the cyclic GC's
        # full collections, which otherwise stall every request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        serving = asyncio.create_task(server.serve(), name="https")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            with contextlib.suppress(SystemExit):
                serving.result()
            raise ServerError(
                f"could not listen on {config.bind_address}:{config.port}: is another "
                "server using the port? Pick another with --port",
                Reason.CONFLICT,
            )
        state.ready = True
        log.info("LLMOS is ready at %s (data dir %s)", url, config.data_dir)
        if password and config.bootstrap_password:
            log.info("user 'admin' was created with the given bootstrap password")
        elif password:
            announce_password(
                password,
                config.data_dir / "bootstrap-password",
                url,
                tls_fingerprint(state.ca_cert.read_text()),
            )
        await serving
        if controllers.lost:
            raise ServerError(
                "this replica lost the controllers' leader Lease and stopped; it rejoins "
                "as a follower when restarted",
                Reason.SERVICE_UNAVAILABLE,
            )
    finally:
        await history.stop()
        await controllers.stop()
        await manager.stop()
        await runtime.stop()
        if cluster is not None:
            await cluster.stop()
        await downloads.stop()
        await gateway.close()
        if saving is not None:
            saving.cancel()
        try:
            usage.save()
        except OSError as exc:
            log.error("could not save the usage ledger %s: %s", usage.ledger, exc)
        if workloads is not None:
            await workloads.close()
        await models.stop()
        await node.stop()
        await auth.stop()
        await store.close()
        log.info("LLMOS stopped")
