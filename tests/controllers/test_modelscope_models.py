"""ModelScope model sources end to end, against a fake ModelScope site on loopback.

One llmos server for the module, pointed at the fake (tests/fakehub.py) with the
``modelscope-endpoint`` Setting. The site serves the bundled SmolLM2 GGUF as
``model.gguf`` of ``org/tiny``, held mid-body once so that the progress in
status can be seen, and what is downloaded really runs under llama.cpp; and as
``org/resumed``, held once, for a download stopped by deleting its ModelService and
resumed by the next. The download itself (files, resuming, tokens) is tested in
tests/engines/test_modelscope.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import openai
import orjson
import pytest

from downloads import condition, set_setting, wait_available, wait_until
from factories import MGMT, create_namespace, ms_path
from fakehub import FakeHub, Repo
from llmos.engines.sources import bundled
from server import RunningServer, admin_server

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GGUF = bundled("smollm2").path.read_bytes()


@pytest.fixture(scope="module")
def site() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    fake.add("org/tiny", Repo({"model.gguf": GGUF, "README.md": b"# tiny\n"}, hold_at=[30 * MiB]))
    fake.add("org/resumed", Repo({"model.gguf": GGUF}, hold_at=[30 * MiB]))
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def ms_server(tmp_path_factory: pytest.TempPathFactory, site: FakeHub) -> Iterator[RunningServer]:
    with admin_server(tmp_path_factory.mktemp("ms") / "data") as running:
        with running.admin_client() as admin:
            set_setting(admin, "modelscope-endpoint", site.url)
        yield running


@pytest.fixture
def ms_admin(ms_server: RunningServer) -> Iterator[httpx.Client]:
    with ms_server.admin_client() as client:
        yield client


@pytest.fixture
def deploy(ms_admin: httpx.Client) -> Iterator[Callable[[str], tuple[str, str]]]:
    """A ModelService of a ModelScope model in a namespace of its own; deleted after."""
    paths: list[str] = []

    def create(model: str) -> tuple[str, str]:
        namespace = f"ms-{uuid.uuid4().hex[:6]}"
        create_namespace(ms_admin, namespace)
        body = {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": "tiny"},
            "spec": {"model": model, "modelRegistry": "modelscope", "replicas": 1},
        }
        response = ms_admin.post(ms_path(namespace), json=body)
        assert response.status_code == 201, response.text
        paths.append(ms_path(namespace, "tiny"))
        return namespace, paths[-1]

    yield create
    for path in paths:
        ms_admin.delete(path)
    for path in paths:
        wait_until(ms_admin, path, lambda status: False, "deletion", gone=True)


def events(admin: httpx.Client, namespace: str) -> dict[str, str]:
    items = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{namespace}/events").json()["items"]
    return {e["spec"]["reason"]: e["spec"]["message"] for e in items}


def test_downloads_with_progress_then_serves_chat(
    ms_server: RunningServer,
    ms_admin: httpx.Client,
    site: FakeHub,
    deploy: Callable[[str], tuple[str, str]],
) -> None:
    namespace, path = deploy("org/tiny:model.gguf")
    offset = site.wait_held("org/tiny")
    ms = wait_until(
        ms_admin,
        path,
        lambda s: (s.get("downloadProgress") or {}).get("downloadedBytes", 0) >= offset,
        f"progress of {offset} bytes",
        timeout=30,
    )
    assert ms["status"]["phase"] == "Downloading"
    assert condition(ms["status"], "ModelAvailable")["reason"] == "Downloading"
    progress = ms["status"]["downloadProgress"]
    assert progress["model"] == "org/tiny:model.gguf"
    assert progress["totalBytes"] == len(GGUF)
    assert 0 < progress["percent"] < 100
    assert events(ms_admin, namespace)["Downloading"] == (
        f"downloading org/tiny:model.gguf from {site.url}"
    )
    site.release()

    ms = wait_until(ms_admin, path, lambda s: s.get("phase") == "Ready", "Ready")
    assert ms["status"]["engine"] == "llama-cpp"
    assert "downloadProgress" not in ms["status"]
    cached = ms_server.data_dir / "models/modelscope/models/org--tiny/snapshots/master/model.gguf"
    available = condition(ms["status"], "ModelAvailable")
    assert (available["status"], available["message"]) == ("True", str(cached))
    assert cached.read_bytes() == GGUF
    # modelscope_hub's log reaches the server's; its progress bars do not.
    assert "Downloading 1 files from org/tiny@master" in ms_server.log()
    assert "B/s]" not in ms_server.log()
    # Only the file named after the colon was fetched.
    assert {r.path.split("FilePath=")[1] for r in site.seen("org/tiny", "GET", "file")} == {
        "model.gguf"
    }

    key = ms_admin.post("/v1-auth/apikeys", json={"description": "ms e2e"}).json()["token"]
    with openai.OpenAI(
        base_url=f"{ms_server.url}/v1",
        api_key=key,
        http_client=httpx.Client(verify=ms_server.ssl_context(), timeout=120),
        max_retries=0,
    ) as client:
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "Say hello in three words."}],
            max_tokens=16,
        )
    assert (reply.choices[0].message.content or "").strip()


def test_a_model_that_does_not_exist_fails_naming_it(
    ms_admin: httpx.Client, deploy: Callable[[str], tuple[str, str]]
) -> None:
    namespace, path = deploy("org/nothing-here")
    ms = wait_until(ms_admin, path, lambda s: s.get("phase") == "Failed", "failure")
    message = ms["status"]["message"]
    assert "ModelScope model 'org/nothing-here' was not found" in message
    assert "spec.hfTokenSecret" in message
    available = condition(ms["status"], "ModelAvailable")
    assert (available["status"], available["reason"]) == ("False", "ModelUnavailable")
    assert "org/nothing-here" in events(ms_admin, namespace)["ModelUnavailable"]


def test_the_endpoint_setting_must_be_a_url(ms_admin: httpx.Client) -> None:
    response = ms_admin.patch(
        f"{MGMT}/settings/modelscope-endpoint",
        content=orjson.dumps({"spec": {"value": "www.modelscope.cn"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422, response.text
    assert "setting modelscope-endpoint must be a URL" in response.text


def test_a_download_stopped_by_deleting_resumes_for_the_next(
    ms_server: RunningServer,
    ms_admin: httpx.Client,
    site: FakeHub,
    deploy: Callable[[str], tuple[str, str]],
) -> None:
    _, path = deploy("org/resumed:model.gguf")
    offset = site.wait_held("org/resumed")
    assert ms_admin.delete(path).status_code == 200
    assert site.wait_abandoned("org/resumed", timeout=5) == offset
    cached = ms_server.data_dir / "models/modelscope/models/org--resumed/snapshots/master"
    kept = (cached / "model.gguf.incomplete").stat().st_size
    assert 0 < kept <= offset
    wait_until(ms_admin, path, lambda status: False, "deletion", gone=True)

    # A ModelService created later fetches only the rest.
    _, path = deploy("org/resumed:model.gguf")
    wait_available(ms_admin, path)
    gets = site.seen("org/resumed", "GET", "file")
    assert [g.headers.get("range") for g in gets] == [None, f"bytes={kept}-"]
    assert (cached / "model.gguf").read_bytes() == GGUF
