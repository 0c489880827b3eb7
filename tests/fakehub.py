"""A fake Hugging Face hub and ModelScope site on loopback, for tests of model downloads.

Both serve the same repos, at the same URL. For Hugging Face it answers what
``huggingface_hub`` 2.4.0's ``snapshot_download`` asks:

- ``GET /api/models/{repo}/revision/{rev}``: the repo's commit ``sha`` and ``siblings``;
- ``GET /api/models/{repo}/tree/{commit}``: its files, sizes and object ids;
- ``HEAD``/``GET /{repo}/resolve/{commit}/{file}``: ``ETag``, ``X-Repo-Commit``,
  ``Content-Length``, and the bytes, honouring ``Range`` (206).

A private repo answers 401 ``X-Error-Code: RepoNotFound`` (as the real hub does)
unless the request carries ``Authorization: Bearer <its token>``.

For ModelScope, what ``modelscope_hub`` 0.5.1 (``HubApi.download_repo``) asks:

- ``GET /api/v1/models/{repo}/repo/files?Revision=master&Recursive=True``: the files
  (``Path``, ``Type``, ``Size``, ``Sha256``) in ``{"Code": 200, "Data": {"Files": [...]}}``;
- ``GET /api/v1/models/{repo}/repo?Revision=master&FilePath={file}``: the bytes,
  honouring ``Range`` (206);
- anything else (its region probe, ``/api/v1/repos/internalAccelerationInfo``): 404.

A missing model answers 404 and a private one without its token (``Authorization:
Bearer`` or the ``m_session_id`` cookie) 401, with ModelScope's JSON error body.

A repo can hold its file's body at given offsets until the test releases it
(``hold_at``), or drop the connection once after some bytes (``drop_after``).
A held body whose client closes the connection ends there, and is recorded in
``abandoned`` (``wait_abandoned``).
Every request is recorded with its headers and what it asked for. The server runs
on a thread of the test process.
"""

from __future__ import annotations

import hashlib
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CHUNK = 1024 * 1024
HOLD_TIMEOUT = 60.0


@dataclass
class Repo:
    files: dict[str, bytes]
    token: str | None = None  # private: only this bearer token may read it
    sha: str = ""
    # Offsets at which a GET's body waits for ``FakeHub.release`` (once each).
    hold_at: list[int] = field(default_factory=list)
    # The first GET from offset 0 sends this many bytes, then closes the connection.
    drop_after: int | None = None

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1(json.dumps(sorted(self.files)).encode())
            for name in sorted(self.files):
                digest.update(self.files[name][:4096])
            self.sha = digest.hexdigest()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    repo: str = ""
    # Hugging Face: "revision", "tree" or "resolve"; ModelScope: "files" or "file".
    kind: str = ""


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Seen] = []
        self.held = threading.Condition()
        self.holding: tuple[str, int] | None = None  # (repo, offset) a body waits at
        self.abandoned: list[tuple[str, int]] = []  # held bodies whose client went away
        self._go = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._go.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def add(self, repo_id: str, repo: Repo) -> Repo:
        self.repos[repo_id] = repo
        return repo

    def seen(self, repo_id: str, method: str | None = None, kind: str = "") -> list[Seen]:
        """Requests for ``repo_id`` (``kind``: as :attr:`Seen.kind`)."""
        return [
            r
            for r in list(self.requests)
            if r.repo == repo_id
            and (not kind or r.kind == kind)
            and (method is None or r.method == method)
        ]

    def wait_held(self, repo_id: str, timeout: float = 60.0) -> int:
        """Wait until a body of ``repo_id`` is held; return the offset it waits at."""
        with self.held:
            if not self.held.wait_for(
                lambda: self.holding is not None and self.holding[0] == repo_id, timeout
            ):
                raise AssertionError(f"no download of {repo_id} reached a hold in {timeout}s")
            assert self.holding is not None
            return self.holding[1]

    def wait_abandoned(self, repo_id: str, timeout: float) -> int:
        """Wait until a held body of ``repo_id`` lost its client; return its offset."""
        with self.held:
            if not self.held.wait_for(
                lambda: any(repo == repo_id for repo, _ in self.abandoned), timeout
            ):
                raise AssertionError(f"the download of {repo_id} went on for {timeout}s")
            return next(offset for repo, offset in self.abandoned if repo == repo_id)

    def release(self) -> None:
        """Let the held body go on."""
        with self.held:
            self.holding = None
        self._go.set()

    def _hold(self, repo_id: str, offset: int, connection: socket.socket) -> bool:
        """Wait for :meth:`release` (or HOLD_TIMEOUT); False if the client went away first."""
        with self.held:
            self._go.clear()
            self.holding = (repo_id, offset)
            self.held.notify_all()
        deadline = time.monotonic() + HOLD_TIMEOUT
        while not self._go.wait(0.05) and time.monotonic() < deadline:
            if _closed(connection):
                with self.held:
                    if self.holding == (repo_id, offset):
                        self.holding = None
                    self.abandoned.append((repo_id, offset))
                    self.held.notify_all()
                return False
        return True


def _closed(connection: socket.socket) -> bool:
    """Whether the peer closed ``connection`` (it sends nothing more on a held response)."""
    if not select.select([connection], [], [], 0)[0]:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset
        return True


_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>revision|tree)/(?P<rev>[^/?]+)")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")
_MS = re.compile(r"^/api/v1/models/(?P<repo>[^/]+/[^/]+)/repo(?P<files>/files)?$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if match := _API.match(url.path):
                hub.requests.append(Seen(method, self.path, headers, match["repo"], match["kind"]))
                repo = self._repo(match["repo"], match["rev"])
                if repo is not None:
                    self._api(match["repo"], match["kind"], repo)
                return
            if match := _RESOLVE.match(url.path):
                hub.requests.append(Seen(method, self.path, headers, match["repo"], "resolve"))
                repo = self._repo(match["repo"], match["rev"])
                if repo is not None:
                    self._resolve(method, match["repo"], repo, match["file"])
                return
            if match := _MS.match(url.path):
                kind = "files" if match["files"] else "file"
                hub.requests.append(Seen(method, self.path, headers, match["repo"], kind))
                self._modelscope(method, match["repo"], kind, parse_qs(url.query))
                return
            hub.requests.append(Seen(method, self.path, headers))
            self._error(404, "EntryNotFound", "no such route")

        def _modelscope(self, method: str, repo_id: str, kind: str, query: dict[str, Any]) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None or query.get("Revision", ["master"]) != ["master"]:
                self._ms_error(404, 10010205001, f"model {repo_id} not found")
                return
            bearer = self.headers.get("Authorization") == f"Bearer {repo.token}"
            cookie = f"m_session_id={repo.token}" in (self.headers.get("Cookie") or "")
            if repo.token and not (bearer or cookie):
                self._ms_error(401, 10010205002, "login required")
                return
            if kind == "files":
                files = [
                    {
                        "Path": name,
                        "Name": name.rsplit("/", 1)[-1],
                        "Type": "blob",
                        "Size": len(data),
                        "Sha256": hashlib.sha256(data).hexdigest(),
                    }
                    for name, data in sorted(repo.files.items())
                ]
                body = {"Code": 200, "Success": True, "Data": {"Files": files}}
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
                return
            name = (query.get("FilePath") or [""])[0]
            if name not in repo.files:
                self._ms_error(404, 10010205001, f"file {name} not found")
                return
            self._body(method, repo_id, repo, repo.files[name], {})

        def _ms_error(self, code: int, business: int, message: str) -> None:
            body = {"Code": business, "Message": message, "Success": False}
            self._send(code, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _repo(self, repo_id: str, revision: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                self._error(401, "RepoNotFound", "Invalid username or password.")
                return None
            if revision not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return None
            return repo

        def _api(self, repo_id: str, kind: str, repo: Repo) -> None:
            body: Any
            if kind == "revision":
                body = {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": repo.sha,
                    "private": repo.token is not None,
                    "siblings": [{"rfilename": name} for name in sorted(repo.files)],
                    "tags": [],
                }
            else:
                body = [
                    {
                        "type": "file",
                        "path": name,
                        "size": len(data),
                        "oid": hashlib.sha1(data).hexdigest(),
                    }
                    for name, data in sorted(repo.files.items())
                ]
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _resolve(self, method: str, repo_id: str, repo: Repo, name: str) -> None:
            data = repo.files.get(name)
            if data is None:
                self._error(404, "EntryNotFound", f"{name} does not exist", repo.sha)
                return
            headers = {
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Repo-Commit": repo.sha,
            }
            self._body(method, repo_id, repo, data, headers)

        def _body(
            self, method: str, repo_id: str, repo: Repo, data: bytes, headers: dict[str, str]
        ) -> None:
            """``data`` from the request's ``Range``, held and dropped as ``repo`` says."""
            headers = {
                **headers,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start, end, code = 0, len(data) - 1, 200
            wanted = _RANGE.match(self.headers.get("Range") or "")
            if wanted:
                start = int(wanted["start"])
                end = int(wanted["end"]) if wanted["end"] else len(data) - 1
                code = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            if method == "HEAD":
                self._send(code, b"", {**headers, "Content-Length": str(end - start + 1)})
                return
            self.send_response(code)
            for key, value in {**headers, "Content-Length": str(end - start + 1)}.items():
                self.send_header(key, value)
            self.end_headers()
            drop = repo.drop_after if start == 0 else None
            if drop is not None:
                repo.drop_after = None  # once
            offset = start
            while offset <= end:
                if repo.hold_at and offset >= repo.hold_at[0]:
                    repo.hold_at.pop(0)
                    if not hub._hold(repo_id, offset, self.connection):
                        self.close_connection = True
                        return
                stop = min(end + 1, offset + CHUNK)
                if repo.hold_at:
                    stop = min(stop, max(repo.hold_at[0], offset + 1))
                if drop is not None:
                    stop = min(stop, drop)
                    if offset >= drop:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                self.wfile.write(data[offset:stop])
                offset = stop

        def _error(self, code: int, error_code: str, message: str, commit: str = "") -> None:
            headers = {
                "Content-Type": "application/json",
                "X-Error-Code": error_code,
                "X-Error-Message": message,
            }
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(code, json.dumps({"error": message}).encode(), headers)

        def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

    return Handler
