"""The types of the common OpenAI request fields, checked before a request goes to a replica.

Engines answer a wrongly typed field in their own ways; llama.cpp's server
answers a 500 carrying its source path. The gateway checks the fields a
client gets wrong most, by plain type tests on the parsed body (no schema
model per request), and answers an OpenAI 400 naming the field, in OpenAI's
own wording. Everything else is left to the engine.
"""

from __future__ import annotations

from typing import Any, NoReturn

from llmos.gateway.errors import GatewayError

# JSON's names for what orjson parses into.
_JSON_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}
_COUNTS = ("max_tokens", "max_completion_tokens", "n")
_NUMBERS = ("temperature", "top_p")


def check(path: str, request: dict[str, Any]) -> None:
    """Raise a 400 for the first wrongly typed common field of ``request`` sent to ``path``."""
    if path == "/v1/chat/completions":
        _check_messages(request.get("messages"))
    elif path == "/v1/completions":
        prompt = request.get("prompt")
        if type(prompt) is not str and type(prompt) is not list:
            _wrong("prompt", prompt, "a string or an array")
    else:
        _check_input(request.get("input"))
    for name in _COUNTS:
        value = request.get(name)
        if value is not None:
            if type(value) is not int:
                _wrong(name, value, "an integer")
            if value < 1:
                raise GatewayError(
                    400,
                    f"Invalid '{name}': integer below minimum value. "
                    f"Expected a value >= 1, but got {value} instead.",
                    code="integer_below_min_value",
                    param=name,
                )
    for name in _NUMBERS:
        value = request.get(name)
        if value is not None and type(value) is not float and type(value) is not int:
            _wrong(name, value, "a number")
    stream = request.get("stream")
    if stream is not None and type(stream) is not bool:
        _wrong("stream", stream, "a boolean")


def _check_messages(messages: object) -> None:
    if type(messages) is not list:
        _wrong("messages", messages, "an array")
    if not messages:
        _empty("messages", messages)
    for i, message in enumerate(messages):
        if type(message) is not dict:
            _wrong(f"messages[{i}]", message, "an object")
        role = message.get("role")
        if type(role) is not str:
            _wrong(f"messages[{i}].role", role, "a string")
        content = message.get("content")
        if content is not None and type(content) is not str and type(content) is not list:
            _wrong(f"messages[{i}].content", content, "a string or an array")


def _check_input(value: object) -> None:
    if type(value) is not str and type(value) is not list:
        _wrong("input", value, "a string or an array")
    if not value:
        _empty("input", value)


def _wrong(name: str, value: object, expected: str) -> NoReturn:
    if value is None:
        raise GatewayError(
            400,
            f"Missing required parameter: '{name}'.",
            code="missing_required_parameter",
            param=name,
        )
    got = _JSON_TYPES.get(type(value), "another type")
    raise GatewayError(
        400,
        f"Invalid type for '{name}': expected {expected}, but got {got} instead.",
        code="invalid_type",
        param=name,
    )


def _empty(name: str, value: str | list[Any]) -> NoReturn:
    kind = "string" if type(value) is str else "array"
    raise GatewayError(
        400,
        f"Invalid '{name}': empty {kind}. Expected a non-empty {kind}, but got an empty one.",
        code=f"empty_{kind}",
        param=name,
    )
