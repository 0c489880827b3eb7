"""A Hugging Face download whose hub does not answer, and whose model is not cached: one
line that names the hub, the network's error and the fix, without a server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from llmos._lib.errors import Reason
from llmos.engines.base import EngineError
from llmos.engines.sources import download, parse


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_hub_that_does_not_answer_is_named_with_the_fix(tmp_path: Path) -> None:
    hub = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(EngineError) as failed:
        download(parse("org/tiny", "huggingface"), tmp_path, endpoint=hub)
    assert failed.value.reason == Reason.SERVICE_UNAVAILABLE
    assert failed.value.message == (
        f"downloading 'org/tiny' failed: the hub at {hub} did not answer "
        "(ConnectionRefusedError: [Errno 111] Connection refused) and the model is not in "
        "this node's cache: check the node's network, or set the huggingface-endpoint "
        "Setting to a mirror it reaches"
    )
