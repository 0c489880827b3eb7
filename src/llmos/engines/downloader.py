"""A model download in a process of its own, so that it can be stopped at once.

``huggingface_hub`` and ``modelscope_hub`` download on worker threads that
nothing can interrupt: a cancelled download on a thread goes on to the end of
the file, and the server's shutdown waits for it. :func:`download_in_child`
runs :func:`llmos.engines.sources.download` in ``python -P -m
llmos.engines.downloader`` instead, and stops that process when it is cancelled.

The parent writes the request (model, cache, endpoint, token) to the child's
stdin, so the token is never on a command line or in an environment. The child
answers on stdout with one JSON object a line: ``{"done": n, "total": n}`` for
progress, ``{"log": [level, logger, message]}`` for a log record (logged again
by the parent, so it reaches the server's log under its own settings), and last
``{"files": {...}}`` or ``{"error": message, "reason": reason}``. What a library
prints goes to stderr, never into these lines.

Stopping: SIGTERM, then SIGKILL after :data:`GRACE` seconds. On SIGTERM the
child keeps the partial Hugging Face files it has open under names the next
download finishes from (:mod:`llmos.engines.hf_resume`: huggingface_hub gives each
process partial files of its own and never resumes them itself) and exits at
once, which closes its connections. ModelScope's partial files are kept as they
are: modelscope_hub resumes from them on the next download. The child gets SIGTERM too when the server dies, even by ``kill -9``
(``PR_SET_PDEATHSIG``), and ignores SIGINT, so a Ctrl-C meant for the server
reaches it through the server's own shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from llmos._lib.errors import LLMOSError, Reason
from llmos.engines.base import EngineError, ModelFiles
from llmos.engines.hf_resume import keep_partials
from llmos.engines.sources import ModelRef, Progress, download

MODULE = "llmos.engines.downloader"
GRACE = 5.0  # seconds from SIGTERM to SIGKILL
_PR_SET_PDEATHSIG = 1

log = logging.getLogger(__name__)


async def download_in_child(
    ref: ModelRef,
    cache_dir: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    progress: Progress | None = None,
) -> ModelFiles:
    """:func:`~llmos.engines.sources.download` in a child process; cancelling it stops that.

    Raises EngineError as ``download`` does, with its message and reason.
    """
    request = {
        "ref": {"source": ref.source, "name": ref.name, "file": ref.file},
        "cacheDir": str(cache_dir),
        "endpoint": endpoint,
        "token": token,
        "logLevel": logging.getLogger().getEffectiveLevel(),
        "parent": os.getpid(),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        "-m",
        MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    outcome: dict[str, Any] = {}
    try:
        with contextlib.suppress(ConnectionError):  # it died at once: its exit says why
            proc.stdin.write(json.dumps(request).encode())
            await proc.stdin.drain()
            proc.stdin.close()
        async for line in proc.stdout:
            message = _parse(line)
            if "done" in message:
                if progress is not None:
                    progress(int(message["done"]), int(message["total"]))
            elif "log" in message:
                level, name, text = message["log"]
                logging.getLogger(str(name)).log(int(level), "%s", text)
            elif message:
                outcome = message
        code = await proc.wait()
    finally:
        await _stop(proc)
    if "files" in outcome:
        files = outcome["files"]
        return ModelFiles(Path(files["path"]), files["format"], int(files["sizeBytes"]))
    if "error" in outcome:
        raise EngineError(str(outcome["error"]), Reason(outcome.get("reason") or Reason.INTERNAL))
    raise EngineError(
        f"downloading {ref.name!r} failed: its process ended with code {code}",
        Reason.SERVICE_UNAVAILABLE,
    )


def _parse(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM ``proc`` if it still runs, SIGKILL after :data:`GRACE`; wait for it."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), GRACE)
    except TimeoutError:
        log.warning("download process %d ignored SIGTERM for %.0fs: killing it", proc.pid, GRACE)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


# The child's side.


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = json.loads(sys.stdin.buffer.read())
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # prints of the libraries go to stderr, not into the answer
    send = _sender(out)
    ref = ModelRef(**request["ref"])
    cache_dir = Path(request["cacheDir"])
    partials = cache_dir.resolve() if ref.source == "huggingface" else None
    signal.signal(signal.SIGTERM, functools.partial(_exit, partials))
    _die_with(int(request["parent"]))
    _forward_logs(send, int(request["logLevel"]))
    try:
        files = download(
            ref,
            cache_dir,
            endpoint=request["endpoint"],
            token=request["token"],
            progress=lambda done, total: send({"done": done, "total": total}),
        )
    except LLMOSError as exc:
        send({"error": str(exc), "reason": str(exc.reason)})
        return 1
    except Exception as exc:
        send({"error": f"downloading {ref.name!r} failed: {exc}"})
        return 1
    send(
        {
            "files": {
                "path": str(files.path),
                "format": files.format,
                "sizeBytes": files.size_bytes,
            }
        }
    )
    return 0


def _sender(out: TextIO) -> Callable[[dict[str, Any]], None]:
    """A line writer the download's threads may share."""
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message) + "\n"
        with lock:
            out.write(line)
            out.flush()

    return send


class _Forward(logging.Handler):
    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        try:
            self.send({"log": [record.levelno, record.name, text]})
        except Exception:
            self.handleError(record)


def _forward_logs(send: Callable[[dict[str, Any]], None], level: int) -> None:
    root = logging.getLogger()
    root.handlers[:] = [_Forward(send)]
    root.setLevel(level)


def _exit(partials: Path | None, signum: int, frame: FrameType | None) -> None:
    """On SIGTERM: keep the open partial files under ``partials`` (if any) for the next
    download to finish (:func:`llmos.engines.hf_resume.keep_partials`), then exit."""
    if partials is not None:
        open_files = []
        with contextlib.suppress(OSError):  # no /proc: huggingface_hub's names stay
            for fd in Path("/proc/self/fd").iterdir():
                try:
                    path = Path(os.readlink(fd))
                except OSError:
                    continue
                if partials in path.parents:
                    open_files.append(path)
        keep_partials(open_files)
    os._exit(128 + signum)


def _die_with(parent: int) -> None:
    """Be sent SIGTERM when ``parent`` (the server) dies."""
    if not sys.platform.startswith("linux"):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
