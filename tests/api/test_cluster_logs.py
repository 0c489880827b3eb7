"""Cluster mode's logs, the part kwok cannot show: a pod's log read line by line as it comes.

The API server gets a pod's log from the kubelet of the pod's node, and kwok's
nodes have none (tests/kube/test_logs.py shows the error LLMOS makes of that).
Here the Kubernetes runtime reads from a stand-in for the API server's log
endpoint, through the same client code the server uses (``_RuntimeAPI`` over
the kube store's ``KubeClient``): the request it makes (pod, container,
``follow``, ``tailLines``), lines that arrive while the log is still open, and
what each refusal becomes. Not exercised: a real kubelet's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from kubemock import kube_status, runtime_on, workload
from llmos._lib.errors import LLMOSError, Reason


class _Log(httpx.AsyncByteStream):
    """A log that is still being written: its second line comes when ``more`` is set."""

    def __init__(self, more: asyncio.Event) -> None:
        self.more = more
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"INFO loading model\n"
        await self.more.wait()
        yield b"INFO listening on 0.0.0.0:8000\n"

    async def aclose(self) -> None:
        self.closed = True


def test_a_followed_log_streams_lines_as_the_pod_writes_them() -> None:
    seen: list[httpx.Request] = []

    async def main() -> None:
        more = asyncio.Event()
        log = _Log(more)

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, stream=log)

        runtime, client = runtime_on(handler)
        lines = await runtime.logs(workload("ModelService"), 1, follow=True, tail=5)
        async with asyncio.timeout(10):
            assert await anext(lines) == "INFO loading model"  # before the log goes on
            more.set()
            assert await anext(lines) == "INFO listening on 0.0.0.0:8000"
            with pytest.raises(StopAsyncIteration):
                await anext(lines)
        assert log.closed
        await client.close()

    asyncio.run(main())
    (request,) = seen
    assert request.url.path == "/api/v1/namespaces/team/pods/ms-m-1/log"
    assert dict(request.url.params) == {"container": "engine", "follow": "true", "tailLines": "5"}


def test_a_notebooks_log_is_its_notebook_containers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="one\ntwo\n")

    async def main() -> list[str]:
        runtime, client = runtime_on(handler)
        lines = [line async for line in await runtime.logs(workload("Notebook", "lab"))]
        await client.close()
        return lines

    assert asyncio.run(main()) == ["one", "two"]
    assert seen[0].url.path == "/api/v1/namespaces/team/pods/nb-lab-0/log"
    assert dict(seen[0].url.params) == {"container": "notebook"}


@pytest.mark.parametrize(
    ("answer", "reason", "words"),
    [
        (
            kube_status(404, 'pods "ms-m-0" not found'),
            Reason.NOT_FOUND,
            "ModelService 'm' has no replica 0: pod team/ms-m-0 does not exist",
        ),
        (
            kube_status(
                400, 'container "engine" in pod "ms-m-0" is waiting to start: PodInitializing'
            ),
            Reason.SERVICE_UNAVAILABLE,
            'the log of pod team/ms-m-0 cannot be read yet: container "engine"',
        ),
        (
            kube_status(500, "no preferred addresses found; known addresses: []"),
            Reason.SERVICE_UNAVAILABLE,
            "Kubernetes could not read the log of pod team/ms-m-0: no preferred addresses",
        ),
        (
            httpx.Response(502, text="Bad Gateway"),
            Reason.SERVICE_UNAVAILABLE,
            "could not read the log of pod team/ms-m-0: Bad Gateway",
        ),
        (  # what the API server answers for a pod no node has taken yet
            httpx.Response(204),
            Reason.SERVICE_UNAVAILABLE,
            "the log of pod team/ms-m-0 cannot be read yet: no node runs it yet (it is Pending)",
        ),
    ],
)
def test_a_log_that_cannot_be_read_names_the_pod_and_why(
    answer: httpx.Response, reason: Reason, words: str
) -> None:
    async def main() -> LLMOSError:
        runtime, client = runtime_on(lambda request: answer)
        with pytest.raises(LLMOSError) as caught:
            await runtime.logs(workload("ModelService"))
        await client.close()
        return caught.value

    error = asyncio.run(main())
    assert error.reason == reason
    assert words in error.message, error.message


def test_an_unreachable_api_server_and_an_unlogged_kind_are_errors_too() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def main() -> tuple[LLMOSError, LLMOSError]:
        runtime, client = runtime_on(refuse)
        with pytest.raises(LLMOSError) as down:
            await runtime.logs(workload("ModelService"))
        with pytest.raises(LLMOSError) as ray:
            await runtime.logs(workload("MLCluster"))
        await client.close()
        return down.value, ray.value

    down, ray = asyncio.run(main())
    assert down.reason == Reason.SERVICE_UNAVAILABLE
    assert "pod team/ms-m-0" in down.message and "did not answer" in down.message
    assert ray.reason == Reason.BAD_REQUEST
