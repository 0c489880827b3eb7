"""ModelScope downloads: a ModelScope model fetched into the shared model cache.

:func:`llmos.engines.sources.download` calls :func:`download` for
``spec.modelRegistry: modelscope`` (the ModelService controller's background
downloads, and cluster mode's fetch container). It drives ``modelscope_hub``,
ModelScope's own hub client (the one ``modelscope.hub.snapshot_download``
delegates to; the optional ``modelscope`` extra). It lists the model's files at
``master`` (``GET {endpoint}/api/v1/models/{owner}/{name}/repo/files``), then
fetches the wanted ones (``GET .../repo?Revision=master&FilePath=...``) into
``{cache}/models/{owner}--{name}/snapshots/master/``. A dropped connection
resumes from the partial file with a Range request; each file is checked
against the SHA-256 the listing gives, and a file already in the cache with
that hash is not fetched again.

Everything modelscope_hub would otherwise take from the machine is given
explicitly: the endpoint (the ``modelscope-endpoint`` Setting), the token (the
ModelService's ``hfTokenSecret``, else none: never the server's own
``MODELSCOPE_API_TOKEN`` or ``modelscope login``) and its config directory
(inside the cache, not ``~/.modelscope``). Its progress bars are off and its
log records go to the server's logging.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from llmos._lib.errors import Reason
from llmos.engines.base import EngineError

DEFAULT_ENDPOINT = "https://www.modelscope.cn"
REVISION = "master"  # ModelScope's default branch
EXTRA = "modelscope"  # pip install 'llmos[modelscope]'
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@functools.cache
def _hub() -> ModuleType:
    """``modelscope_hub``, made quiet; EngineError naming the extra when it is not installed."""
    # With a handler of ours in place it adds no stream handler of its own, and its
    # records reach the server's log like any other library's.
    logging.getLogger("modelscope_hub").addHandler(logging.NullHandler())
    try:
        hub = importlib.import_module("modelscope_hub")
        download_module: Any = importlib.import_module("modelscope_hub._download")
    except ImportError as exc:
        raise EngineError(
            "spec.modelRegistry: modelscope needs ModelScope's hub client, which is not "
            f"installed on this node (missing Python module {exc.name or 'modelscope_hub'}): "
            f"install it with pip install 'llmos[{EXTRA}]'",
            Reason.SERVICE_UNAVAILABLE,
        ) from exc
    # It draws a tqdm bar per file and one for the file count, on stderr, which is the
    # server's log; there is no argument to turn them off (only TQDM_DISABLE, read once
    # when tqdm is first imported).
    download_module.tqdm = functools.partial(download_module.tqdm, disable=True)
    return hub


def download(
    name: str,
    file: str | None,
    cache_dir: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download (or resume) ModelScope model ``name`` (only ``file`` of it, if given); blocking.

    Returns the file, or the snapshot directory of the whole model.
    """
    hub = _hub()
    config = hub.HubConfig(
        endpoint=endpoint or DEFAULT_ENDPOINT,
        token=token or "",  # "": no token at all, not the machine's
        cache_dir=cache_dir,
        config_dir=cache_dir / ".modelscope",
    )
    api = hub.HubApi(config=config)
    try:
        listing = api.list_repo_files(name, "model", revision=REVISION)
        wanted = [f for f in listing if not f.is_dir and (file is None or f.path == file)]
        if file is not None and not wanted:
            have = ", ".join(sorted(f.path for f in listing if not f.is_dir)[:20])
            raise EngineError(
                f"spec.model: ModelScope model {name!r} has no file {file!r} (it has: {have})",
                Reason.NOT_FOUND,
            )
        root = api.download_repo(
            name,
            "model",
            revision=REVISION,
            cache_dir=cache_dir,
            # The listing above, so that it is not asked for twice.
            file_list=[{"Path": f.path, "Size": f.size, "Sha256": f.sha256} for f in wanted],
            progress_callbacks=[_reporter(progress, sum(f.size for f in wanted))],
        )
    except (hub.NotExistError, hub.AuthenticationError) as exc:
        fix = (
            "or the token in spec.hfTokenSecret may not read it"
            if token
            else "or it is private and needs a token: set spec.hfTokenSecret"
        )
        raise EngineError(
            f"spec.model: ModelScope model {name!r} was not found at {config.endpoint} ({fix})",
            Reason.NOT_FOUND,
        ) from exc
    except hub.PermissionDeniedError as exc:
        raise EngineError(
            f"spec.model: ModelScope refuses the token in spec.hfTokenSecret access to "
            f"model {name!r}: {exc.message}",
            Reason.FORBIDDEN,
        ) from exc
    except hub.HubError as exc:
        raise EngineError(
            f"downloading {name!r} from ModelScope ({config.endpoint}) failed: {_brief(exc)}",
            Reason.SERVICE_UNAVAILABLE,
        ) from exc
    except OSError as exc:  # requests' errors are OSErrors too
        raise EngineError(
            f"downloading {name!r} from ModelScope ({config.endpoint}) failed: {exc}",
            Reason.SERVICE_UNAVAILABLE,
        ) from exc
    return Path(root) / file if file else Path(root)


def _brief(exc: Any) -> str:
    """A hub error in one line: its message and, for a failed file, that file's error."""
    failed = getattr(exc, "failed_files", None) or {}
    detail = "; ".join(f"{path}: {getattr(err, 'message', err)}" for path, err in failed.items())
    return f"{exc.message} ({detail})" if detail else str(exc.message)


def _reporter(progress: Progress | None, total: int) -> type:
    """A progress callback class for ``download_repo``: bytes of all files, over ``total``.

    modelscope_hub makes one instance per file and calls ``update(n)`` from its
    worker threads as bytes arrive (a negative ``n`` when a file starts over).
    """
    lock = threading.Lock()
    done = 0

    class Reporter:
        def __init__(self, filename: str, file_size: int) -> None:
            self.filename = filename

        def update(self, size: int) -> None:
            nonlocal done
            with lock:
                done += size
                if progress is not None and total:
                    progress(max(done, 0), total)

        def end(self) -> None:
            pass

    return Reporter
