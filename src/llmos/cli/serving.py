"""``llmos run``, ``llmos chat`` and ``llmos logs``: deploy a model, talk to it, read its logs."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from llmos.cli.client import Client, CLIError, KindRef, default_namespace, error_from
from llmos.cli.common import NamespaceOpt, err, friendly
from llmos.cli.lookup import naming

MODELSERVICES = KindRef("ml.llmos.ai", "v1", "ModelService", "modelservices", namespaced=True)
# The kinds ``llmos logs KIND/NAME`` reads.
LOGGED = ("ModelService", "Notebook", "MLCluster")


class Registry(StrEnum):
    """``spec.modelRegistry``: where ``llmos run`` tells the server the model comes from."""

    huggingface = "huggingface"
    modelscope = "modelscope"
    local = "local"


def default_name(model: str) -> str:
    """``bundled:smollm2`` → ``smollm2``; ``Qwen/Qwen2.5-0.5B-Instruct`` → ``qwen2-5-0-5b-instruct``."""
    base = model.removeprefix("bundled:").rsplit("/", 1)[-1].split(":", 1)[0]
    name = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    return name[:63].strip("-") or "model"


def _reason(status: dict[str, Any], condition: str) -> str:
    for found in status.get("conditions") or []:
        if found.get("type") == condition:
            return str(found.get("reason") or "")
    return ""


def _downloaded(progress: dict[str, Any]) -> str:
    """``status.downloadProgress`` in a few words: ``22% of 138 MiB``, or the MiB so far
    while the size is not known yet."""
    done, total = progress.get("downloadedBytes") or 0, progress.get("totalBytes") or 0
    if total:
        return f"{100 * done // total}% of {total / 2**20:,.0f} MiB"
    return f"{done / 2**20:,.0f} MiB so far"


@contextlib.contextmanager
def _progress(first: str) -> Iterator[Callable[[str], None]]:
    """Where a wait stands: a spinner's one line on a terminal; elsewhere (a pipe, a CI
    log) a plain line each time it changes, so that a long download is seen to move."""
    if err.is_terminal:
        with err.status(Text(first)) as spinner:
            yield lambda line: spinner.update(Text(line))
    else:
        err.print(first, markup=False, highlight=False)
        yield lambda line: err.print(line, markup=False, highlight=False)


def _wait_ready(client: Client, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown, message = "", ""
    kept = (
        f" (the ModelService is kept: `llmos edit ms {name} -n {namespace}` to fix it, "
        f"or `llmos delete ms {name} -n {namespace}`)"
    )
    with _progress(f"Waiting for {name} to be ready…") as show:
        while time.monotonic() < deadline:
            ms: dict[str, Any] = client.request("GET", MODELSERVICES.path(namespace, name))
            status = ms.get("status") or {}
            phase = status.get("phase") or "Pending"
            message = status.get("message") or ""
            progress = status.get("downloadProgress") or {}
            line = f"{name}: {phase}"
            if progress:
                line += f" ({_downloaded(progress)})"
            elif phase == "Pending" and message:
                line += f" ({message})"
            if line != shown:
                show(line)
                shown = line
            if phase == "Ready":
                return ms
            if phase in ("Failed", "CrashLoop"):
                raise CLIError(f"{name} is {phase}: {message}{kept}")
            if phase == "Pending" and _reason(status, "Ready") == "ExceedsNode":
                raise CLIError(f"{name} cannot run on this node: {message}{kept}")
            time.sleep(0.5)
    why = f" ({message})" if message else ""
    raise CLIError(
        f"{name} was not ready after {timeout:.0f} s{why}: see "
        f"`llmos describe ms {name} -n {namespace}`"
    )


def _sse(response: Any) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:].strip()
        if data == "[DONE]":
            return
        yield orjson.loads(data)


def _chat_error(response: Any, model: str) -> CLIError:
    """The gateway's OpenAI-style error, in CLI terms where it points to HTTP routes."""
    error = error_from(response)
    if error.reason == "model_not_found":
        return CLIError(
            f"the model {model!r} does not exist or you do not have access to it: "
            "`llmos get ms -A` lists the model services you can see"
        )
    return error


def _chat_once(
    client: Client,
    model: str,
    messages: list[dict[str, str]],
    temperature: float | None,
    max_tokens: int | None,
) -> str:
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},  # so the gateway counts exactly
    }
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    answer: list[str] = []
    refused = functools.partial(_chat_error, model=model)
    with client.stream("POST", "/v1/chat/completions", refused, json=body) as response:
        for chunk in _sse(response):
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    answer.append(piece)
                    sys.stdout.write(piece)
                    sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(answer)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
    def run(
        model: Annotated[
            str,
            typer.Argument(
                metavar="MODEL",
                help="bundled:smollm2, a Hugging Face (or ModelScope) repo id, or a path",
            ),
        ],
        name: Annotated[
            str | None, typer.Option(help="ModelService name (default: from the model).")
        ] = None,
        namespace: NamespaceOpt = None,
        engine: Annotated[
            str, typer.Option(help="auto, llama-cpp, vllm or transformers.")
        ] = "auto",
        replicas: Annotated[int, typer.Option(min=0, help="How many replicas serve it.")] = 1,
        gpu: Annotated[int | None, typer.Option(help="Whole GPUs per replica.")] = None,
        gpu_memory: Annotated[
            str | None,
            typer.Option(help='A share of one GPU per replica: "8Gi", or a fraction "0.5".'),
        ] = None,
        memory: Annotated[
            str | None, typer.Option(help='Memory limit per replica, e.g. "4Gi".')
        ] = None,
        cpu: Annotated[
            str | None, typer.Option(help='CPU share per replica in cores, e.g. "2" or "500m".')
        ] = None,
        registry: Annotated[
            Registry | None,
            typer.Option(
                help="Where the model comes from (default: local for a path, else huggingface)."
            ),
        ] = None,
        wait: Annotated[bool, typer.Option(help="Wait until it is ready.")] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 900,
    ) -> None:
        """Deploy a model in one line, and wait until it serves."""
        client = Client()
        ns = default_namespace(namespace)
        name = name or default_name(model)
        path = Path(model).expanduser()
        if registry is None:
            local = model.startswith(("/", "./", "../", "~")) or path.exists()
            registry = Registry.local if local else Registry.huggingface
        if registry is Registry.local and not model.startswith("~") and not path.is_absolute():
            model = str(path.resolve())  # where the user is, not where the server runs
        spec: dict[str, Any] = {
            "model": model,
            "modelRegistry": registry.value,
            "engine": engine,
            "replicas": replicas,
        }
        resources = {"gpu": gpu, "gpuMemory": gpu_memory, "memory": memory, "cpu": cpu}
        if chosen := {key: value for key, value in resources.items() if value}:
            spec["resources"] = chosen  # the server checks them: a bad one is its 422
        body = {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": name},
            "spec": spec,
        }
        client.request("POST", MODELSERVICES.path(ns), json=body)
        err.print(f"modelservice/{name} created in namespace {ns}")
        if wait and replicas:
            _wait_ready(client, ns, name, timeout)
            # namespace/name: the name alone is ambiguous once another namespace serves it.
            err.print(f"{name} is ready. Chat with it: llmos chat {ns}/{name}")

    @app.command()
    @friendly
    def chat(
        model: Annotated[
            str, typer.Argument(metavar="MODEL", help="The model name (see `llmos get ms -A`).")
        ],
        message: Annotated[
            str | None, typer.Option("--message", "-m", help="Ask once and exit.")
        ] = None,
        system: Annotated[str | None, typer.Option(help="A system prompt.")] = None,
        temperature: Annotated[
            float | None, typer.Option(min=0.0, max=2.0, help="Sampling temperature.")
        ] = None,
        max_tokens: Annotated[
            int | None, typer.Option(min=1, help="The longest answer, in tokens.")
        ] = None,
    ) -> None:
        """Chat with a model, streaming the answers. Ctrl-D or /exit ends it."""
        client = Client()
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        if message is not None:
            messages.append({"role": "user", "content": message})
            _chat_once(client, model, messages, temperature, max_tokens)
            return
        interactive = sys.stdin.isatty()
        if interactive:
            err.print(f"Chatting with {model}. Ctrl-D or /exit to leave.")
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            if line.strip() in ("/exit", "/quit"):
                break
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line})
            answer = _chat_once(client, model, messages, temperature, max_tokens)
            messages.append({"role": "assistant", "content": answer})

    @app.command()
    @friendly
    def logs(
        target: Annotated[
            str,
            typer.Argument(
                metavar="TARGET",
                help="modelservice/NAME (or ms/NAME, or NAME), notebook/NAME (nb/), "
                "mlcluster/NAME; or the kind and the name apart (ms NAME), as describe takes them",
            ),
        ],
        second: Annotated[str | None, typer.Argument(metavar="NAME", hidden=True)] = None,
        namespace: NamespaceOpt = None,
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
        ] = False,
        tail: Annotated[int | None, typer.Option(help="Only the last N lines.")] = None,
        replica: Annotated[int, typer.Option(min=0, help="A ModelService's replica.")] = 0,
        node: Annotated[
            str, typer.Option(help="An MLCluster's Ray node: head, or a worker as GROUP-INDEX.")
        ] = "head",
    ) -> None:
        """Print or follow the logs of a replica, notebook or Ray node."""
        if second is not None:  # `llmos logs ms NAME`
            if "/" in target:
                raise CLIError(f"give KIND/NAME or KIND NAME, not {target} {second}", code=2)
            target = f"{target}/{second}"
        kind, _, name = target.rpartition("/")
        client = Client()
        ref = client.resolve(kind) if kind else MODELSERVICES
        if ref.kind not in LOGGED:
            raise CLIError(
                f"logs are available for modelservices, notebooks and mlclusters, not {kind!r}",
                code=2,
            )
        params: dict[str, str] = {"follow": str(follow).lower()}
        if ref.kind == "ModelService":
            params["replica"] = str(replica)
        elif ref.kind == "MLCluster":
            params["node"] = node
        if tail is not None:
            params["tailLines"] = str(tail)
        ns = default_namespace(namespace)
        path = ref.path(ns, name) + "/logs"
        with (
            naming(client, ref, ns, name),
            client.stream("GET", path, params=params) as response,
        ):
            for chunk in response.iter_text():
                sys.stdout.write(chunk)
                sys.stdout.flush()
