"""Request bodies of the OpenAI API subset the transformers engine serves.

Used by ``app.py``. Unknown fields are ignored rather than refused: OpenAI
clients send fields this small server has no use for (``user``,
``presence_penalty``, ``logit_bias`` …), and refusing them would break those
clients. Fields it does read are validated, and a bad one is a 400.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Body):
    include_usage: bool = False


class Sampling(_Body):
    """What chat and text completions share."""

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="only one choice per request")
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop strings")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def usage_in_stream(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class ContentPart(_Body):
    type: Literal["text"] = Field(description="only text parts: this server reads no images")
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    # The newer name of max_tokens for chat.
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(Sampling):
    # A string, a list of strings, or token ids (one list, or a list of lists).
    prompt: str | list[str] | list[int] | list[list[int]]
    # OpenAI's default for completions.
    max_tokens: int | None = Field(default=16, ge=1)


class EmbeddingRequest(_Body):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
