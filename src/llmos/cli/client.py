"""The CLI's HTTPS client: stored credentials, Status errors and kind discovery."""

from __future__ import annotations

import contextlib
import difflib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from llmos.cli import credentials

if TYPE_CHECKING:  # httpx costs ~0.3 s to import: only commands that call out pay it
    import httpx


def tls_verify(ca_file: str | None, insecure: bool = False) -> bool | ssl.SSLContext:
    """What httpx should verify the server with: our saved CA, the system's, or nothing."""
    if insecure:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


class CLIError(Exception):
    """An error to show the user as one plain line (plus field details).

    ``reason`` is the server's Status reason (``NotFound``, ``Forbidden``, …), or the
    gateway's error code (``model_not_found``, …), when the error came from one, so
    callers test it rather than the wording.
    """

    def __init__(
        self,
        message: str,
        details: list[str] | None = None,
        code: int = 1,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.details = details or []
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class KindRef:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def error_from(response: httpx.Response) -> CLIError:
    try:
        body = response.json()
    except ValueError:
        return CLIError(f"HTTP {response.status_code}: {response.text[:300]}")
    if isinstance(body, dict) and body.get("kind") == "Status":
        message = str(body.get("message"))
        causes = (body.get("details") or {}).get("causes") or []
        details = [str(c["message"]) for c in causes if c.get("message")]
        if len(details) == 1 and details[0] in message:
            details = []  # the headline says it already
        return CLIError(message, details, reason=body.get("reason"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # OpenAI's shape (the gateway): its code stands for the reason
        message = error.get("message") or f"HTTP {response.status_code}"
        return CLIError(str(message), reason=error.get("code"))
    if error is not None:
        return CLIError(str(error))
    return CLIError(f"HTTP {response.status_code}: {response.text[:300]}")


class Client:
    def __init__(
        self,
        creds: credentials.Credentials | None = None,
        verify: bool | ssl.SSLContext | None = None,
    ) -> None:
        creds = creds or credentials.load()
        if creds is None:
            raise CLIError("not logged in: run `llmos login https://HOST:8443` first")
        self.creds = creds
        if verify is None:
            verify = tls_verify(creds.ca_file, creds.insecure)
        import httpx

        self.http = httpx.Client(
            base_url=creds.server,
            verify=verify,
            headers={"Authorization": f"Bearer {creds.token}"},
            timeout=httpx.Timeout(30.0, read=None),
        )
        self._kinds: list[KindRef] | None = None
        self._short: dict[str, KindRef] = {}

    def _unreachable(self, exc: Exception) -> CLIError:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return CLIError(f"cannot reach {self.creds.server}: {exc}. Is the server running?")
        return CLIError(f"request to {self.creds.server} failed: {exc}")

    def _refused(self, response: httpx.Response) -> CLIError:
        if response.status_code == 401:
            why = str(error_from(response)).split(": ", 1)[0]  # the rest is for API users
            return CLIError(
                f"your login is no longer valid ({why}; sessions expire, and tokens can be "
                f"revoked): run `llmos login {self.creds.server}` again",
                reason="Unauthorized",
            )
        return error_from(response)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise self._refused(response)
        if not response.content:
            return None
        return response.json()

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        refused: Callable[[httpx.Response], CLIError] | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """A streamed response; an error answer (``refused`` makes its CLIError), an
        unreachable server or a connection lost mid-stream is a CLIError."""
        import httpx

        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise (refused or self._refused)(response)
                yield response
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def stream_lines(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        with self.stream("GET", path, params=params) as response:
            for line in response.iter_lines():
                if line.strip():
                    yield orjson.loads(line)

    # -- kinds -----------------------------------------------------------------

    def kinds(self) -> list[KindRef]:
        if self._kinds is None:
            found: list[KindRef] = []
            for group in self.request("GET", "/apis")["groups"]:
                version = group["preferredVersion"]["version"]
                listing = self.request("GET", f"/apis/{group['name']}/{version}")
                for res in listing["resources"]:
                    if "/" in res["name"]:
                        continue
                    ref = KindRef(
                        group["name"], version, res["kind"], res["name"], res["namespaced"]
                    )
                    found.append(ref)
                    for short in res.get("shortNames") or []:
                        self._short[short] = ref
            self._kinds = found
        return self._kinds

    def resolve(self, word: str) -> KindRef:
        """Find a kind by plural, singular, kind name, short name or ``plural.group``."""
        lowered = word.lower()
        kinds = self.kinds()
        if lowered in self._short:
            return self._short[lowered]
        for ref in kinds:
            names = {ref.plural, ref.kind.lower(), f"{ref.plural}.{ref.group}"}
            if lowered in names:
                return ref
        shorts: dict[str, list[str]] = {}
        for short, ref in self._short.items():
            shorts.setdefault(ref.plural, []).append(short)
        known = ", ".join(
            ref.plural
            + (f" ({', '.join(sorted(shorts[ref.plural]))})" if ref.plural in shorts else "")
            for ref in sorted(kinds, key=lambda r: r.plural)
        )
        words = [w for ref in kinds for w in (ref.plural, ref.kind.lower())] + list(self._short)
        close = difflib.get_close_matches(lowered, words, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CLIError(f"unknown kind {word!r}: {hint}use one of {known}")

    def by_api_version(self, api_version: str, kind: str) -> KindRef:
        for ref in self.kinds():
            if ref.api_version == api_version and ref.kind == kind:
                return ref
        raise CLIError(f"the server does not serve kind {kind!r} in {api_version!r}")


def default_namespace(given: str | None) -> str:
    return given or os.environ.get("LLMOS_NAMESPACE") or "default"
