"""Hugging Face downloads that a stopped server left unfinished, resumed where they stopped.

huggingface_hub (2.x) writes each file to ``blobs/<etag>.<random>.incomplete``, a name
of its own per process, and never resumes a file another process left: a server stopped
(or killed) mid-download would start a 10 GB file again. So:

- when the downloader is stopped, :func:`keep_partials` renames the files it was writing
  to ``blobs/<etag>.partial``;
- before the next ``snapshot_download`` of the repo, :func:`finish_partials` asks the hub
  for the rest of each (an HTTP ``Range`` request), checks the whole file against its
  SHA-256 (a large file's etag, as the hub stores it in LFS or Xet), and puts it in place
  as ``blobs/<etag>``, where huggingface_hub finds it and only links it into the snapshot.

A partial that cannot be finished (the hub no longer has that file at this revision, it
answers without ``Range``, or the result does not check out) is deleted, and the file
is downloaded whole as before.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["finish_partials", "keep_partials"]

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


def keep_partials(open_files: Iterable[Path]) -> None:
    """Rename the ``<etag>.<random>.incomplete`` files among ``open_files`` to
    ``<etag>.partial``, keeping the larger where one is there already."""
    for path in open_files:
        etag = path.name.split(".", 1)[0]
        if not (path.name.endswith(".incomplete") and _SHA256.match(etag)):
            continue
        kept = path.with_name(f"{etag}.partial")
        try:
            if kept.exists() and kept.stat().st_size >= path.stat().st_size:
                path.unlink()
            else:
                path.replace(kept)
        except OSError:
            continue


def finish_partials(
    repo: str,
    revision: str,
    files: Callable[[], list[str]],
    cache_dir: Path,
    *,
    endpoint: str | None,
    token: str | None,
    progress: Callable[[int, int], None],
    whole_repo: bool = False,
) -> int:
    """Finish the partial files of ``repo`` that are among ``files()`` (asked only if
    there are any); how many were. With ``whole_repo`` (``files()`` lists every file of
    the revision), a partial of no file listed is stale and deleted; otherwise it may be
    another download's (one file of the same repo), and stays."""
    folder = f"models--{repo.replace('/', '--')}"
    blobs = cache_dir / folder / "blobs"
    partials = {p.name.removesuffix(".partial"): p for p in blobs.glob("*.partial")}
    if not partials:
        return 0
    import httpx
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils._fixes import WeakFileLock

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    finished = 0
    for name in files():
        if not partials:
            break
        url = hf_hub_url(repo, name, revision=revision, endpoint=endpoint or None)
        try:
            meta = get_hf_file_metadata(url, token=token or False)
        except Exception as exc:  # the download proper says what is wrong
            log.info("not resuming %s of %s: %s", name, repo, exc)
            continue
        partial = partials.pop(meta.etag or "", None)
        if partial is None or meta.size is None:
            continue
        # huggingface_hub's own lock for this blob: one process at a time finishes it,
        # and none downloads it anew meanwhile (two namespaces may want the same file).
        lock = cache_dir / ".locks" / folder / f"{meta.etag}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with WeakFileLock(lock):
            if (blobs / str(meta.etag)).exists():  # finished by another meanwhile
                partial.unlink(missing_ok=True)
                continue
            # The hub's URL, not where it redirects: httpx drops the token if that is
            # elsewhere.
            if _finish(partial, url, meta.size, headers, progress, httpx):
                finished += 1
                log.info("resumed %s of %s from a partial download", name, repo)
    if whole_repo:
        for left in partials.values():  # of no file of this revision
            left.unlink(missing_ok=True)
    return finished


def _finish(
    partial: Path,
    url: str,
    size: int,
    headers: dict[str, str],
    progress: Callable[[int, int], None],
    httpx: Any,
) -> bool:
    etag = partial.name.removesuffix(".partial")
    have = partial.stat().st_size
    try:
        if have < size:
            with httpx.stream(
                "GET",
                url,
                headers={**headers, "Range": f"bytes={have}-"},
                follow_redirects=True,
                timeout=httpx.Timeout(30.0, read=120.0),
            ) as reply:
                if reply.status_code != 206:
                    raise ValueError(f"the hub answered {reply.status_code} to a Range request")
                with partial.open("ab") as out:
                    for chunk in reply.iter_bytes(_CHUNK):
                        out.write(chunk)
                        have += len(chunk)
                        progress(have, size)
        digest = hashlib.sha256()
        with partial.open("rb") as done:
            while block := done.read(_CHUNK):
                digest.update(block)
        if partial.stat().st_size != size or digest.hexdigest() != etag:
            raise ValueError("the finished file does not match its SHA-256")
    except (OSError, ValueError, httpx.HTTPError) as exc:
        log.warning("could not resume %s (%s): downloading it whole", partial.name, exc)
        partial.unlink(missing_ok=True)
        return False
    partial.replace(partial.with_name(etag))
    return True
