"""``llmos login``, ``logout`` and ``whoami``."""

from __future__ import annotations

import contextlib
import os
import ssl
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmos.cli import credentials
from llmos.cli.client import Client, CLIError, error_from
from llmos.cli.common import PasswordStdinOpt, err, friendly


def _fingerprint(pem: str) -> str:
    from llmos._lib.tls import fingerprint  # cryptography: only login pays for importing it

    return fingerprint(pem)


def _fetch_ca(url: str, yes: bool) -> str:
    import httpx

    try:
        pem = httpx.get(f"{url}/v1-public/cacerts", verify=False, timeout=15).text
        fingerprint = _fingerprint(pem)
    except (httpx.HTTPError, ValueError) as exc:
        raise CLIError(f"cannot fetch the CA certificate from {url}: {exc}") from exc
    # Plain text on a line of its own: no highlighting of "256" or of hex groups, no
    # line break inside the fingerprint, so it reads and compares as one value.
    err.print("The server's CA certificate has the SHA-256 fingerprint:", highlight=False)
    err.print(f"  {fingerprint}", highlight=False, markup=False, soft_wrap=True)
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError(
                "cannot ask whether to trust the CA (no terminal): pass --ca-cert FILE, "
                "or --yes to trust the fingerprint above"
            )
        if not typer.confirm("Trust it?", default=False):
            raise CLIError("not trusted: nothing was saved")
    return pem


def _saved_ca(url: str) -> str | None:
    """The CA an earlier login saved, if it verifies ``url``'s certificate; else None.

    Logging in again to the same server (or to another one the same CA signed)
    then asks nothing. A server with a new CA is asked about as a new one.
    """
    path = credentials.ca_path()
    try:
        pem = path.read_text()
        context = ssl.create_default_context(cadata=pem)
    except (OSError, ssl.SSLError, ValueError):
        return None
    import httpx

    try:
        httpx.get(f"{url}/v1-public/cacerts", verify=context, timeout=15)
    except httpx.HTTPError:
        return None
    return pem


def _verify(ca_pem: str | None, ca_cert: Path | None) -> bool | ssl.SSLContext:
    """Verify the server with this CA, held in memory until the login succeeds."""
    if ca_pem is None:
        return False
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        source = f"--ca-cert {ca_cert}" if ca_cert else "the server's CA"
        raise CLIError(f"{source} holds no usable PEM certificate: {exc}", code=2) from exc


def _password(given: str | None, stdin: bool, prompt: str) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if given:
        return given
    if os.environ.get("LLMOS_PASSWORD"):
        return os.environ["LLMOS_PASSWORD"]
    if not sys.stdin.isatty():
        raise CLIError("no password given: use --password-stdin or set LLMOS_PASSWORD")
    return str(typer.prompt(prompt, hide_input=True))


def _new_password() -> str:
    if not sys.stdin.isatty():
        raise CLIError("this user must choose a new password: pass --new-password", code=2)
    return str(typer.prompt("Choose a new password", hide_input=True, confirmation_prompt=True))


def _change_password(client: Client, current: str, new: str | None, server_url: str) -> None:
    """The change a login that must change the password makes (on first login, with the
    server URL it records)."""
    info = client.request("GET", "/v1-public/info")
    for attempt in range(3):
        fresh = new or _new_password()
        try:
            if info.get("firstLogin"):
                body = {"newPassword": fresh, "serverUrl": server_url}
                client.request("POST", "/v1-auth/first-login", json=body)
                err.print(f"First login done: the server URL is {server_url}.", highlight=False)
            else:
                body = {"currentPassword": current, "newPassword": fresh}
                client.request("POST", "/v1-auth/password", json=body)
            return
        except CLIError as exc:
            # A password the server refuses (too short): typed at a prompt, ask again.
            if new is not None or exc.reason != "Invalid" or attempt == 2:
                raise
            err.print(f"[bold red]error:[/] {escape(str(exc))}: choose another", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
    def login(
        url: Annotated[
            str, typer.Argument(metavar="URL", help="The server, e.g. https://HOST:8443")
        ],
        username: Annotated[str, typer.Option("--username", "-u", help="Who logs in.")] = "admin",
        password: Annotated[str | None, typer.Option(help="Prefer --password-stdin.")] = None,
        password_stdin: PasswordStdinOpt = False,
        ca_cert: Annotated[Path | None, typer.Option(help="Trust this CA file.")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Trust the server's CA.")] = False,
        insecure_skip_tls_verify: Annotated[
            bool,
            typer.Option(
                "--insecure-skip-tls-verify",
                help="Do not check the server's certificate (anyone on the path can read the token).",
            ),
        ] = False,
        new_password: Annotated[
            str | None, typer.Option(help="On first login: the new admin password.")
        ] = None,
        server_url: Annotated[
            str | None, typer.Option(help="On first login: the URL users reach LLMOS at.")
        ] = None,
    ) -> None:
        """Log in to an LLMOS server and remember the token and its CA."""
        url = url.rstrip("/")
        if not url.startswith("https://"):
            raise CLIError(f"{url!r} is not an https:// URL", code=2)
        # Nothing is saved until the login worked: a failed login to another
        # server must not replace the CA that the current session relies on.
        ca_pem: str | None = None
        if ca_cert is not None:
            if not ca_cert.is_file():
                raise CLIError(f"--ca-cert {ca_cert}: no such file", code=2)
            ca_pem = ca_cert.read_text()
        elif not insecure_skip_tls_verify:
            ca_pem = _saved_ca(url) or _fetch_ca(url, yes)
        verify = _verify(ca_pem, ca_cert)
        secret = _password(password, password_stdin, "Password")
        import httpx

        try:
            response = httpx.post(
                f"{url}/v1-public/auth/login",
                json={"username": username, "password": secret},
                verify=verify,
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach {url}: {exc}") from exc
        if response.status_code != 200:
            raise error_from(response)
        body = response.json()
        ca_file = str(credentials.ca_path()) if ca_pem else None
        creds = credentials.Credentials(
            url, body["token"], username, ca_file, insecure_skip_tls_verify
        )
        client = Client(creds, verify=verify)
        if body.get("mustChangePassword"):
            try:
                _change_password(client, secret, new_password, server_url or url)
            except BaseException:
                # Not saved, so no one would ever use or revoke this session: end it now.
                with contextlib.suppress(CLIError):
                    client.request("POST", "/v1-auth/logout")
                raise
        if ca_pem:
            credentials.save_ca(ca_pem)
        path = credentials.save(creds)
        err.print(f"Logged in to {url} as {username}. Credentials saved in {path}.")

    @app.command()
    @friendly
    def logout() -> None:
        """Revoke the stored session token and forget it."""
        creds = credentials.load()
        if creds is None:
            err.print("Not logged in.")
            return
        try:
            Client(creds).request("POST", "/v1-auth/logout")
        except CLIError as exc:
            if exc.reason != "Unauthorized":  # unreachable: the session may still be live
                credentials.forget()
                raise CLIError(f"{exc} (its credentials are forgotten here)") from exc
            ended = " (its session had ended already)"
        else:
            ended = ""
        credentials.forget()
        err.print(f"Logged out of {creds.server}{ended}.")

    @app.command()
    @friendly
    def whoami() -> None:
        """Show who the stored token belongs to."""
        me = Client().request("GET", "/v1-auth/me")
        typer.echo(f"{me['user']} (roles: {', '.join(me['globalRoles']) or '-'})")
