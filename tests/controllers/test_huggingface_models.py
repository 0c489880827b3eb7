"""Hugging Face model sources end to end, against a fake hub on loopback.

One llmos server for the module, pointed at the fake hub with the
``huggingface-endpoint`` Setting. The hub serves the bundled SmolLM2 GGUF as
``model.gguf`` of several repos (plain, held mid-body, dropping the connection,
private), so what is downloaded really runs under llama.cpp. Each test deletes
its ModelServices, which stops their engines. The test of a server stopped
mid-download starts a server of its own.
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import psutil
import pytest

from cli.runner import CLI, line_with, start_cli
from downloads import condition, set_setting, wait_available, wait_until
from factories import create_namespace, create_secret, ms_path, secret_path
from fakehub import FakeHub, Repo
from llmos.engines.sources import bundled
from processes import descendants
from sandboxed import is_the_program
from server import RunningServer, admin_server, start_server

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GGUF = bundled("smollm2").path.read_bytes()
TOKEN = "hf_private_token_for_tests"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    fake.add("org/tiny", Repo({"model.gguf": GGUF, "README.md": b"# tiny\n"}))
    # Held at chunk boundaries (huggingface_hub writes 10 MiB at a time).
    fake.add("org/slow", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB, 60 * MiB]))
    fake.add("org/flaky", Repo({"model.gguf": GGUF}, drop_after=25 * MiB))
    fake.add("org/private", Repo({"model.gguf": GGUF}, token=TOKEN))
    fake.add("org/deleted", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB]))
    fake.add("org/shutdown", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB]))
    fake.add("org/watched", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB]))
    fake.add("org/killed", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB]))
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[RunningServer]:
    with admin_server(tmp_path_factory.mktemp("hf") / "data") as running:
        with running.admin_client() as admin:
            set_setting(admin, "huggingface-endpoint", hub.url)
        yield running


@pytest.fixture
def hf_admin(hf_server: RunningServer) -> Iterator[httpx.Client]:
    with hf_server.admin_client() as client:
        yield client


@pytest.fixture
def namespace(hf_admin: httpx.Client) -> str:
    name = f"hf-{uuid.uuid4().hex[:6]}"
    create_namespace(hf_admin, name)
    return name


@pytest.fixture
def deployed(hf_admin: httpx.Client) -> Iterator[Callable[..., str]]:
    """Create ModelServices of a HF model; every one is deleted (its engine stopped) after."""
    paths: list[str] = []

    def deploy(namespace: str, name: str, model: str, **spec: Any) -> str:
        body = {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": name},
            "spec": {"model": model, "modelRegistry": "huggingface", "replicas": 1, **spec},
        }
        response = hf_admin.post(ms_path(namespace), json=body)
        assert response.status_code == 201, response.text
        paths.append(ms_path(namespace, name))
        return ms_path(namespace, name)

    yield deploy
    for path in paths:
        hf_admin.delete(path)
    for path in paths:
        wait_until(hf_admin, path, lambda status: False, "deletion", gone=True)


def ready(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Ready"


def patch(admin: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = admin.patch(
        path,
        content=orjson.dumps(body),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


def snapshot_file(server: RunningServer, repo: str) -> Path:
    [path] = (server.data_dir / "models" / f"models--{repo.replace('/', '--')}").glob(
        "snapshots/*/model.gguf"
    )
    return path


def downloaders(server_pid: int) -> list[psutil.Process]:
    """The server's download processes (llmos.engines.downloader)."""
    return [child for child, argv in descendants(server_pid) if "llmos.engines.downloader" in argv]


def wait_gone(processes: list[psutil.Process], timeout: float = 10.0) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    assert not alive, f"still running after {timeout}s: {alive}"


def engine_env(server: RunningServer, repo: str) -> dict[str, str]:
    """The environment of the llama.cpp process serving ``repo``'s download."""
    marker = f"models--{repo.replace('/', '--')}"
    for child, argv in descendants(server.pid):
        if (
            is_the_program(argv)
            and "llmos.engines.llama_server" in " ".join(argv)
            and marker in " ".join(argv)
        ):
            env: dict[str, str] = child.environ()
            return env
    raise AssertionError(f"no llama.cpp process serves {repo}")


def test_downloads_then_serves_chat(
    hf_server: RunningServer,
    hf_admin: httpx.Client,
    hub: FakeHub,
    namespace: str,
    deployed: Callable[..., str],
) -> None:
    path = deployed(namespace, "tiny", "org/tiny:model.gguf")
    ms = wait_until(hf_admin, path, ready, "Ready")
    assert ms["status"]["engine"] == "llama-cpp"
    assert condition(ms["status"], "ModelAvailable")["status"] == "True"
    assert "downloadProgress" not in ms["status"]
    assert snapshot_file(hf_server, "org/tiny").read_bytes() == GGUF
    # Its lifecycle, in the order the Events were recorded.
    items = hf_admin.get(f"/apis/node.llmos.ai/v1/namespaces/{namespace}/events").json()["items"]
    items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    reasons = [e["spec"]["reason"] for e in items if e["spec"]["involvedObject"]["name"] == "tiny"]
    assert reasons == ["Downloading", "Downloaded", "Scheduled", "Started", "Ready"], reasons
    # Only the file named after the colon was fetched, from the hub.
    fetched = {r.path.rsplit("/", 1)[1] for r in hub.seen("org/tiny", "GET", "resolve")}
    assert fetched == {"model.gguf"}
    assert not any("authorization" in r.headers for r in hub.seen("org/tiny"))

    key = hf_admin.post("/v1-auth/apikeys", json={"description": "hf e2e"}).json()["token"]
    with openai.OpenAI(
        base_url=f"{hf_server.url}/v1",
        api_key=key,
        http_client=httpx.Client(verify=hf_server.ssl_context(), timeout=120),
        max_retries=0,
    ) as client:
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "Say hello in three words."}],
            max_tokens=16,
        )
    assert (reply.choices[0].message.content or "").strip()


def test_progress_rises_while_the_hub_holds(
    hf_admin: httpx.Client, hub: FakeHub, namespace: str, deployed: Callable[..., str]
) -> None:
    path = deployed(namespace, "slow", "org/slow:model.gguf")
    seen: list[dict[str, Any]] = []
    for _ in range(2):
        offset = hub.wait_held("org/slow")
        ms = wait_until(
            hf_admin,
            path,
            lambda s, at=offset: (s.get("downloadProgress") or {}).get("downloadedBytes", 0) >= at,
            f"progress of {offset} bytes",
            timeout=30,
        )
        assert ms["status"]["phase"] == "Downloading"
        assert condition(ms["status"], "ModelAvailable")["reason"] == "Downloading"
        seen.append(ms["status"]["downloadProgress"])
        hub.release()
    first, second = seen
    assert first["model"] == "org/slow:model.gguf"
    assert first["totalBytes"] == second["totalBytes"] == len(GGUF)
    assert 0 < first["downloadedBytes"] < second["downloadedBytes"] < len(GGUF)
    assert 0 < first["percent"] < second["percent"] < 100
    ms = wait_until(hf_admin, path, ready, "Ready")
    assert "downloadProgress" not in ms["status"]


def test_llmos_run_shows_the_download_move_then_the_model_ready(
    hf_server: RunningServer,
    hf_admin: httpx.Client,
    hub: FakeHub,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Off a terminal (a pipe, a CI log), ``llmos run`` says where the wait stands whenever
    that changes: the download's percent while the hub holds it, then ready."""
    cli = CLI(tmp_path / "config")
    assert cli.login(hf_server).code == 0
    run = start_cli(cli.config_home, "run", "org/watched:model.gguf", "-n", namespace)
    try:
        assert run.stderr is not None
        hub.wait_held("org/watched")
        moving = line_with(run.stderr, "% of ", 30)
        hub.release()
        _, said = run.communicate(timeout=180)
    finally:
        run.kill()
        run.wait()
        hf_admin.delete(ms_path(namespace, "watched"))
    assert run.returncode == 0, said
    assert moving is not None and re.fullmatch(
        r"watched: Downloading \(\d+% of \d+ MiB\)\n", moving
    ), moving
    assert f"watched is ready. Chat with it: llmos chat {namespace}/watched" in said


def test_interrupted_download_resumes(
    hf_server: RunningServer,
    hf_admin: httpx.Client,
    hub: FakeHub,
    namespace: str,
    deployed: Callable[..., str],
) -> None:
    path = deployed(namespace, "flaky", "org/flaky:model.gguf")
    wait_available(hf_admin, path)
    gets = hub.seen("org/flaky", "GET", "resolve")
    assert len(gets) == 2, [g.headers.get("range") for g in gets]
    assert "range" not in gets[0].headers
    resumed_at = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 25 * MiB
    on_disk = snapshot_file(hf_server, "org/flaky").read_bytes()
    assert hashlib.sha256(on_disk).digest() == hashlib.sha256(GGUF).digest()
    leftovers = list(snapshot_file(hf_server, "org/flaky").parents[2].glob("blobs/*.incomplete"))
    assert leftovers == []


def test_private_repo_needs_the_token_secret(
    hf_server: RunningServer,
    hf_admin: httpx.Client,
    hub: FakeHub,
    namespace: str,
    deployed: Callable[..., str],
) -> None:
    path = deployed(namespace, "private", "org/private:model.gguf")
    ms = wait_until(hf_admin, path, lambda s: s.get("phase") == "Failed", "failure")
    message = ms["status"]["message"]
    assert "'org/private' was not found" in message and "spec.hfTokenSecret" in message
    assert condition(ms["status"], "ModelAvailable")["status"] == "False"

    # Naming a Secret that does not exist, then one without the key, says so.
    patch(hf_admin, path, {"spec": {"hfTokenSecret": "hf"}})
    ms = wait_until(hf_admin, path, lambda s: "Secret 'hf'" in (s.get("message") or ""), "news")
    assert "does not exist" in ms["status"]["message"]
    assert "spec.stringData.token" in ms["status"]["message"]
    create_secret(hf_admin, namespace, "hf", other="not-the-token")
    ms = wait_until(hf_admin, path, lambda s: "has no key 'token'" in (s.get("message") or ""), "")
    assert ms["status"]["phase"] == "Failed"

    # Adding the token to the Secret is enough: the controller watches Secrets.
    patch(hf_admin, secret_path(namespace, "hf"), {"spec": {"stringData": {"token": TOKEN}}})
    ms = wait_until(hf_admin, path, ready, "Ready")
    assert {r.headers.get("authorization") for r in hub.seen("org/private", "GET", "resolve")} == {
        f"Bearer {TOKEN}"
    }
    assert engine_env(hf_server, "org/private")["HF_TOKEN"] == TOKEN
    assert TOKEN not in hf_admin.get(path).text

    # The files are in the shared cache now, but another namespace without the token
    # still gets no further than the hub's refusal.
    other = f"hf-{uuid.uuid4().hex[:6]}"
    create_namespace(hf_admin, other)
    thief = deployed(other, "thief", "org/private:model.gguf")
    ms = wait_until(hf_admin, thief, lambda s: s.get("phase") == "Failed", "failure")
    assert "'org/private' was not found" in ms["status"]["message"]


def test_deleting_the_model_service_stops_its_download(
    hf_server: RunningServer,
    hf_admin: httpx.Client,
    hub: FakeHub,
    namespace: str,
    deployed: Callable[..., str],
) -> None:
    path = deployed(namespace, "deleted", "org/deleted:model.gguf")
    offset = hub.wait_held("org/deleted")
    [downloader] = downloaders(hf_server.pid)
    assert hf_admin.delete(path).status_code == 200
    # The hub sees the connection closed, mid-file, and the download's process ends.
    assert hub.wait_abandoned("org/deleted", timeout=5) == offset
    wait_gone([downloader], timeout=5)
    assert len(hub.seen("org/deleted", "GET", "resolve")) == 1
    # What it had is kept in the shared cache, under a name the next download finishes.
    blobs = hf_server.data_dir / "models" / "models--org--deleted" / "blobs"
    assert list(blobs.glob("*.incomplete")) == []
    [partial] = blobs.glob("*.partial")
    kept = partial.stat().st_size
    assert 0 < kept <= offset
    wait_until(hf_admin, path, lambda status: False, "deletion", gone=True)

    # Created again, it goes on from there (a Range request), and the file checks out.
    path = deployed(namespace, "again", "org/deleted:model.gguf")
    wait_available(hf_admin, path)
    gets = hub.seen("org/deleted", "GET", "resolve")
    assert [g.headers.get("range") for g in gets] == [None, f"bytes={kept}-"]
    assert snapshot_file(hf_server, "org/deleted").read_bytes() == GGUF
    assert list(blobs.glob("*.partial")) == []


@pytest.mark.parametrize(
    ("sig", "repo"), [(signal.SIGTERM, "org/shutdown"), (signal.SIGKILL, "org/killed")]
)
def test_a_server_stopped_mid_download_exits_at_once_and_resumes_it_when_started(
    tmp_path: Path, hub: FakeHub, sig: signal.Signals, repo: str
) -> None:
    """Stopped (SIGTERM) or killed (SIGKILL, which it cannot see), the server leaves no
    download running behind it, and started again it fetches only the rest."""
    running = start_server(tmp_path / "data")
    try:
        running.setup_admin()
        with running.admin_client() as admin:
            set_setting(admin, "huggingface-endpoint", hub.url)
            create_namespace(admin, "stopping")
            body = {
                "apiVersion": "ml.llmos.ai/v1",
                "kind": "ModelService",
                "metadata": {"name": "held"},
                "spec": {"model": f"{repo}:model.gguf", "modelRegistry": "huggingface"},
            }
            assert admin.post(ms_path("stopping"), json=body).status_code == 201
        offset = hub.wait_held(repo)
        [downloader] = downloaders(running.pid)
        started = time.monotonic()
        code = running.stop(sig, timeout=30)
        took = time.monotonic() - started
        if sig == signal.SIGTERM:
            assert code == 0, running.log()
            assert took < 5, f"the server took {took:.1f}s to exit:\n{running.log()}"
        assert hub.wait_abandoned(repo, timeout=5) == offset
        wait_gone([downloader], timeout=5)
        assert len(hub.seen(repo, "GET", "resolve")) == 1

        # Started again, it asks the hub for the rest of the file only.
        running.start()
        with running.admin_client() as admin:
            wait_available(admin, f"{ms_path('stopping')}/held")
        gets = hub.seen(repo, "GET", "resolve")
        assert len(gets) == 2 and gets[1].headers["range"].startswith("bytes=")
        resumed_at = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
        assert 0 < resumed_at <= offset
        model = running.data_dir / "models" / f"models--{repo.replace('/', '--')}" / "snapshots"
        assert next(model.glob("*/model.gguf")).read_bytes() == GGUF
    finally:
        running.stop()
