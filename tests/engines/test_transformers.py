"""The transformers engine's command line, env and checks (no model is run here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest

from llmos.engines.base import EngineContext, EngineError, ModelFiles, share_text
from llmos.engines.hf_server.__main__ import parse
from llmos.engines.registry import choose
from llmos.engines.transformers import TransformersEngine

MODEL = ModelFiles(Path("/models/tiny"), "safetensors", 1024)


def test_command_serves_the_model_on_the_port_placeholder() -> None:
    command = TransformersEngine().command(EngineContext(MODEL, "tiny"))
    assert command == (
        sys.executable,
        "-P",
        "-m",
        "llmos.engines.hf_server",
        "--model",
        "/models/tiny",
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    )


def test_memory_share_and_engine_args_are_passed_on() -> None:
    ctx = EngineContext(
        MODEL, "tiny", engine_args=("--dtype", "bfloat16"), gpus=(0,), gpu_memory_fraction=0.5
    )
    command = TransformersEngine().command(ctx)
    assert command[-4:] == ("--gpu-memory-fraction", "0.5000", "--dtype", "bfloat16")
    # What the server parses is exactly what the engine wrote.
    args = parse([a.replace("{port}", "8001") for a in command[command.index("--model") :]])
    assert (args.model, args.served_model_name, args.port) == ("/models/tiny", "tiny", 8001)
    assert (args.gpu_memory_fraction, args.dtype) == (0.5, "bfloat16")


def test_server_refuses_bad_options() -> None:
    with pytest.raises(SystemExit):
        parse(["--model", "/m", "--gpu-memory-fraction", "1.5"])
    with pytest.raises(SystemExit):
        parse(["--model", "/m", "--dtype", "int3"])


def test_env_pins_gpus_and_stays_offline() -> None:
    engine = TransformersEngine()
    assert engine.env(EngineContext(MODEL, "tiny")) == {
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
    }
    assert engine.env(EngineContext(MODEL, "tiny", gpus=(1, 3)))["CUDA_VISIBLE_DEVICES"] == "1,3"


def test_auto_picks_transformers_for_safetensors_without_a_gpu() -> None:
    assert isinstance(choose("auto", MODEL, has_gpu=False), TransformersEngine)
    assert isinstance(choose("transformers", MODEL, has_gpu=True), TransformersEngine)


def test_check_refuses_gguf() -> None:
    class Installed(TransformersEngine):
        modules: ClassVar[tuple[str, ...]] = ()  # whether or not torch is here

    gguf = ModelFiles(Path("/models/x.gguf"), "gguf", 10)
    with pytest.raises(EngineError, match="cannot serve a gguf model"):
        Installed.check(EngineContext(gguf, "x"))
    Installed.check(EngineContext(MODEL, "tiny"))


def test_missing_packages_name_the_extra() -> None:
    class Absent(TransformersEngine):
        modules: ClassVar[tuple[str, ...]] = ("torch", "no_such_module_for_llmos")

    problem = Absent.missing()
    assert problem is not None
    assert "no_such_module_for_llmos" in problem
    assert "pip install 'llmos[transformers]'" in problem
    with pytest.raises(EngineError, match="not installed"):
        Absent.check(EngineContext(MODEL, "tiny"))


@pytest.mark.parametrize(
    ("fraction", "flag"),
    [(0.5, "0.5000"), (0.335, "0.3350"), (2**28 / (80 * 2**30), "0.0031"), (1e-6, "0.0001")],
)
def test_a_share_is_rounded_down_but_never_to_zero(fraction: float, flag: str) -> None:
    """256 MiB of an 80 GiB GPU is 0.0031, not "0.00" (which engines refuse)."""
    assert share_text(fraction) == flag
    assert 0 < float(flag) <= fraction or fraction < 0.0001


def test_each_engine_takes_its_key_from_a_variable_spec_env_may_not_set() -> None:
    from llmos.engines.hf_server.__main__ import KEY_ENV
    from llmos.engines.registry import ENGINES
    from llmos.resources.ml import ENGINE_KEY_ENV, ModelServiceSpec

    assert TransformersEngine.key_env == KEY_ENV
    files = ModelFiles(Path("/m"), "safetensors", 1)
    for engine in ENGINES.values():
        assert engine.key_env in ENGINE_KEY_ENV, engine.name
        assert engine().key(EngineContext(files, "m", api_key="k")) == {engine.key_env: "k"}
        assert engine().key(EngineContext(files, "m")) == {}
    for args in (["--api_key", "k"], ["--api"], ["--api-k=k"]):
        with pytest.raises(ValueError, match="is set by LLMOS"):
            ModelServiceSpec(model="m", engineArgs=args)
    ModelServiceSpec(model="m", engineArgs=["--apikeys-file", "x", "--n_ctx", "8"])
