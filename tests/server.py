"""Start and stop a real ``llmos server`` process on loopback, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_PASSWORD = "admin-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    data_dir: Path
    port: int
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    admin_token: str | None = None  # set by setup_admin()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "ca.crt")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> RunningServer:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = self.log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "llmos",
            "server",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--bind-address",
            "127.0.0.1",
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llmos server exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", verify=False, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"llmos server was not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.url, verify=self.ssl_context(), headers=headers, timeout=30, **kwargs
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def bootstrap_password(self) -> str:
        return (self.data_dir / "bootstrap-password").read_text().strip()

    def login(self, username: str, password: str, **extra: Any) -> str:
        with self.client() as client:
            response = client.post(
                "/v1-public/auth/login", json={"username": username, "password": password, **extra}
            )
            response.raise_for_status()
            return str(response.json()["token"])

    def setup_admin(self) -> str:
        """Do the first login with the bootstrap password; return an admin token."""
        token = self.login("admin", self.bootstrap_password())
        with self.client(token) as client:
            response = client.post(
                "/v1-auth/first-login",
                json={"newPassword": ADMIN_PASSWORD, "serverUrl": self.url},
            )
            response.raise_for_status()
        self.admin_token = token
        return token

    def admin_client(self, **kwargs: Any) -> httpx.Client:
        """A client with the token of the first login (``setup_admin`` first)."""
        assert self.admin_token is not None, "call setup_admin() before admin_client()"
        return self.client(self.admin_token, **kwargs)


def start_server(data_dir: Path, *args: str) -> RunningServer:
    return RunningServer(data_dir, free_port(), list(args)).start()


@contextmanager
def admin_server(data_dir: Path, *args: str, check_exit: bool = True) -> Iterator[RunningServer]:
    """A server started with ``args``, its first login done (``admin_token``).

    Fixtures yield it from the ``with``, benchmarks run in it. The server is
    stopped when the block ends; with ``check_exit`` it must exit with 0.
    """
    running = start_server(data_dir, *args)
    try:
        running.setup_admin()
        yield running
    except BaseException:
        running.stop()
        raise
    code = running.stop()
    assert code == 0 or not check_exit, running.log()
