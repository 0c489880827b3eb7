"""An engine's 5xx made fit for the client (llmos.gateway.errors.engine_failure), without a server."""

from __future__ import annotations

import orjson
import pytest

from llmos.gateway.errors import engine_failure

_FAILED = "the model server failed on this request"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # llama.cpp (OpenAI's shape), its traceback after the message.
        (
            {
                "error": {
                    "message": "1 validation error: messages\n\n"
                    '  File "/venv/lib/llama_cpp/server/app.py", line 376, in create\n'
                    "    POST /v1/chat/completions",
                    "type": "internal_server_error",
                }
            },
            f"{_FAILED}: 1 validation error: messages",
        ),
        # vLLM: the message at the top.
        (
            {"object": "error", "message": "CUDA out of memory", "code": 500},
            f"{_FAILED}: CUDA out of memory",
        ),
        # FastAPI's detail, all traceback.
        ({"detail": 'Traceback (most recent call last):\n  File "/a.py"'}, _FAILED),
        # TGI: the error as a string, with a Windows path.
        (
            {"error": r"cannot open C:\models\x.gguf", "error_type": "x"},
            f"{_FAILED}: cannot open <path>",
        ),
        ({"unexpected": True}, _FAILED),
    ],
)
def test_the_engines_message_is_kept_without_traceback_or_paths(
    body: dict[str, object], message: str
) -> None:
    error = engine_failure(500, orjson.dumps(body))
    assert error.status == 500
    assert orjson.loads(error.body()) == {
        "error": {"message": message, "type": "api_error", "param": None, "code": "engine_error"}
    }


def test_a_body_that_is_not_json_says_only_that_the_engine_failed() -> None:
    error = engine_failure(503, b"<html>/srv/www/index.html</html>")
    assert error.status == 503
    assert error.message == _FAILED


def test_a_long_message_is_cut() -> None:
    error = engine_failure(500, orjson.dumps({"message": "x" * 5000}))
    assert len(error.message) < 1100 and error.message.endswith("…")
