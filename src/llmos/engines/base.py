"""What a serving engine is: a ModelService turned into a command, a health check and env.

One module per engine (``llama_cpp``, ``vllm``, ``transformers``) subclasses
:class:`Engine`. The ModelService controller picks one with
:func:`llmos.engines.registry.choose` and hands its command to the runtime.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from llmos._lib.errors import LLMOSError, Reason

ModelFormat = Literal["gguf", "safetensors", "unknown"]


@dataclass(frozen=True)
class Probe:
    """How to tell an engine is up: a 2xx on this path, within this start-up time."""

    path: str = "/health"
    startup_timeout_seconds: float = 600.0


class EngineError(LLMOSError):
    """An engine cannot serve this model here (missing package, wrong format, …)."""


@dataclass(frozen=True)
class ModelFiles:
    """A model on local disk, ready for an engine: a file (GGUF) or a directory."""

    path: Path
    format: ModelFormat
    size_bytes: int


@dataclass(frozen=True)
class EngineContext:
    model: ModelFiles
    served_name: str
    engine_args: tuple[str, ...] = ()
    gpus: tuple[int, ...] = ()
    # Share of each GPU's memory this replica may use (None: the engine's default).
    gpu_memory_fraction: float | None = None
    # Layers to offload so a GGUF model stays within its share (llama.cpp; None: all).
    gpu_layers: int | None = None
    # The key callers must send (``Authorization: Bearer KEY``); None: the engine is open.
    api_key: str | None = None


def model_folders(model: ModelFiles) -> tuple[Path, ...]:
    """What an engine reads to load ``model``: its file or folder, and, for a Hugging Face
    cache snapshot (symlinks into the repo's ``blobs``), the repo's whole folder."""
    for parent in model.path.parents:
        if parent.name.startswith("models--"):
            return (parent,)
    resolved = model.path.resolve()
    return (model.path,) if resolved == model.path else (model.path, resolved)


def share_text(fraction: float) -> str:
    """A GPU share as an engine's flag takes it: rounded down, so never more than was given
    (three shares of 0.335 are not 1.02 of a GPU), and never 0 (which engines refuse)."""
    return f"{max(math.floor(fraction * 10_000), 1) / 10_000:.4f}"


class Engine:
    """Base class of serving engines. Subclasses set the ClassVars and ``command``."""

    name: ClassVar[str]
    install: ClassVar[str]  # the command that installs it, e.g. pip install 'llmos[transformers]'
    modules: ClassVar[tuple[str, ...]]  # importable modules it needs
    formats: ClassVar[tuple[ModelFormat, ...]]
    needs_gpu: ClassVar[bool] = False
    health: ClassVar[Probe] = Probe("/health")
    # The environment variable the engine reads its API key from (never argv, which
    # every user on the machine can read in /proc). Its health route stays open.
    key_env: ClassVar[str]
    # Runs in the workload sandbox where there is one (llmos.runtime.local.sandbox).
    sandboxed: ClassVar[bool] = True
    # Ends a stream with its token counts when asked (stream_options.include_usage): the
    # gateway then asks for every stream, for usage and token limits, and keeps that last
    # chunk from clients that did not ask.
    stream_usage: ClassVar[bool] = True

    @classmethod
    def missing(cls) -> str | None:
        """None if installed here, else a message saying what to install."""
        absent = [m for m in cls.modules if importlib.util.find_spec(m) is None]
        if not absent:
            return None
        return (
            f"the {cls.name} engine is not installed on this node (missing Python "
            f"module {', '.join(absent)}): install it with {cls.install}"
        )

    @classmethod
    def check(cls, ctx: EngineContext) -> None:
        problem = cls.missing()
        if problem:
            raise EngineError(problem, Reason.SERVICE_UNAVAILABLE)
        if ctx.model.format not in cls.formats:
            raise EngineError(
                f"the {cls.name} engine cannot serve a {ctx.model.format} model "
                f"({ctx.model.path.name}): use one of {', '.join(cls.formats)}, or another engine",
                Reason.INVALID,
            )
        if cls.needs_gpu and not ctx.gpus:
            raise EngineError(
                f"the {cls.name} engine needs a GPU, and none is allocated to this replica: "
                "set spec.resources.gpu, or use engine llama-cpp or transformers on CPU",
                Reason.INVALID,
            )

    @classmethod
    def refuses(cls, api: str, engine_args: Sequence[str]) -> str | None:
        """Why a replica started with ``engine_args`` cannot answer ``api``
        (``/v1/chat/completions``, ``/v1/completions`` or ``/v1/embeddings``), or None."""
        return None

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        """The argv that serves ``ctx.model`` on 127.0.0.1 at the literal port ``{port}``."""
        raise NotImplementedError

    def key(self, ctx: EngineContext) -> dict[str, str]:
        """The environment that gives the engine its API key; set after the user's own env."""
        return {self.key_env: ctx.api_key} if ctx.api_key else {}

    def env(self, ctx: EngineContext) -> dict[str, str]:
        env = {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in ctx.gpus)}
        if ctx.gpus:
            # The indexes are NVML's, which count in PCI bus order; CUDA counts fastest
            # first unless told otherwise.
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env
