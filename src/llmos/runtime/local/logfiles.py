"""The log directory as a whole: whose files are there, and deleting those of gone owners.

A replica's output is ``<name>.log`` and its rotations ``<name>.log.1``, ``.2`` …
(:mod:`~llmos.runtime.local.logs`), where ``<name>`` is its key written one
character at a time (:func:`~llmos.runtime.local.logs.escape_key`). So whether a
file's key starts with a prefix can be read off the file's name, without the key.
A name shortened with a digest (the escaped key passed 200 characters) keeps only
its first 180: a prefix longer than that cannot be told from it, and such a file
is neither deleted nor kept on a guess: :func:`delete_logs` leaves it, unless the
caller knows its key (the runtime knows the keys it ran since it started).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

from llmos.runtime.local.logs import SHORTENED_KEEPS, escape_key, log_file_name

__all__ = ["delete_logs"]

log = logging.getLogger(__name__)

# ``<name>.log`` (the current file) or ``<name>.log.<n>`` (a rotation). A name may hold
# ``.log`` itself (key ``a.log/0``), so the last ``.log`` is the one that ends it.
_LOG_FILE = re.compile(r"(?P<name>.+)\.log(?:\.[0-9]+)?")


def delete_logs(
    log_dir: Path,
    prefix: str,
    *,
    keep: Collection[str] = (),
    spare: Collection[str] = (),
    known: Collection[str] = (),
) -> list[str]:
    """Delete the files, every rotation, of the replicas whose key starts with ``prefix``.

    Not those whose key starts with one of ``keep`` (may be), nor the replicas of
    the keys in ``spare`` (the ones that run). ``known``: keys whose files may be
    there, told apart by key where a shortened name cannot tell. Returns the
    file names (``<name>.log``) of the replicas whose files were deleted.
    """
    wanted = escape_key(prefix)
    kept = [escape_key(p) for p in keep]
    spared = {_name(key) for key in spare}
    sure = {
        _name(key)
        for key in known
        if key.startswith(prefix) and not any(key.startswith(p) for p in keep)
    }
    files: dict[str, list[Path]] = defaultdict(list)
    try:
        with os.scandir(log_dir) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _LOG_FILE.fullmatch(entry.name)
        if match is not None and entry.is_file(follow_symlinks=False):
            files[match["name"]].append(Path(entry.path))
    deleted = []
    for name, paths in sorted(files.items()):
        if name in spared:
            continue
        if name not in sure and (
            _under(name, wanted) is not True or any(_under(name, k) is not False for k in kept)
        ):
            continue
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot delete log file %s: %s", path, exc)
        deleted.append(name + ".log")
    return deleted


def _name(key: str) -> str:
    return log_file_name(key).removesuffix(".log")


def _under(name: str, escaped_prefix: str) -> bool | None:
    """Whether the key of file ``name`` starts with the prefix; None when the name cannot tell."""
    shown, shortened, _digest = name.partition("~")
    if shortened and len(escaped_prefix) > SHORTENED_KEEPS:
        return None if escaped_prefix.startswith(shown) else False
    return shown.startswith(escaped_prefix)
