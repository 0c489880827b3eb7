"""ServerConfig: flags > LLMOS_* env > YAML file > defaults; and what `llmos server` does with it."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from llmos.api import config as config_module
from llmos.api.config import ConfigError, ServerConfig
from server import RunningServer, free_port, start_server

# -- precedence, unit ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's LLMOS_* variables nor their config file leak into a test."""
    for key in list(os.environ):
        if key.startswith("LLMOS_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr(config_module, "default_config_file", lambda: tmp_path / "absent.yaml")


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = ServerConfig()
    assert (config.port, config.bind_address, config.log_level) == (8443, "0.0.0.0", "info")
    assert config.tls_sans == [] and config.tls_cert is None
    assert config.node_name == socket.gethostname().lower()


def test_events_are_kept_an_hour_and_100_per_object_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = ServerConfig()
    assert (config.event_ttl_seconds, config.events_per_object) == (3600, 100)
    assert config.event_sweep_interval == 60
    path = _file(tmp_path, "eventTtlSeconds: 120\neventsPerObject: 20\n")
    monkeypatch.setenv("LLMOS_EVENT_SWEEP_INTERVAL", "5")
    config = ServerConfig(config=path)
    assert (config.event_ttl_seconds, config.events_per_object) == (120, 20)
    assert config.event_sweep_interval == 5
    with pytest.raises(ValidationError, match="event_ttl_seconds"):
        ServerConfig(event_ttl_seconds=0)


def test_flags_beat_env_beat_file_beat_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _file(tmp_path, "port: 1111\nlogLevel: debug\nnodeName: from-file\n")
    assert ServerConfig(config=path).port == 1111
    monkeypatch.setenv("LLMOS_PORT", "2222")
    monkeypatch.setenv("LLMOS_NODE_NAME", "from-env")
    from_env = ServerConfig(config=path)
    assert (from_env.port, from_env.node_name, from_env.log_level) == (2222, "from-env", "debug")
    flagged = ServerConfig(config=path, port=3333)
    assert (flagged.port, flagged.node_name, flagged.log_format) == (3333, "from-env", "text")


def test_file_keys_may_be_camel_or_kebab_case(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        f"dataDir: {tmp_path / 'data'}\nbind-address: 127.0.0.1\n"
        "tlsSans: [a.example.com, 10.0.0.9]\nlog-format: json\nskip_preflight: true\n",
    )
    config = ServerConfig(config=path)
    assert config.data_dir == tmp_path / "data"
    assert config.bind_address == "127.0.0.1" and config.log_format == "json"
    assert config.tls_sans == ["a.example.com", "10.0.0.9"] and config.skip_preflight


def test_the_config_file_can_be_named_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMOS_CONFIG", str(_file(tmp_path, "port: 4444\n")))
    assert ServerConfig().port == 4444


@pytest.mark.parametrize("key", ["portt", "config", "data_dir_x"])
def test_an_unknown_key_names_the_key_and_the_file(tmp_path: Path, key: str) -> None:
    path = _file(tmp_path, f"{key}: 1\n")
    with pytest.raises(ConfigError) as caught:
        ServerConfig(config=path)
    message = str(caught.value)
    assert f"unknown key {key!r}" in message and str(path) in message
    assert "dataDir" in message  # the known keys, spelled as in the file


def test_the_node_file_may_hold_llmos_installs_keys_too(tmp_path: Path) -> None:
    """One file per node, as k3s has: the server passes over install's keys."""
    text = "port: 4444\nrole: agent\nserver: https://10.0.0.1:6443\ntoken: K10x::secret\n"
    config = ServerConfig(config=_file(tmp_path, text + "tlsSans: [a.example.com]\n"))
    assert config.port == 4444 and config.tls_sans == ["a.example.com"]


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ServerConfig(config=tmp_path / "nope.yaml")


def test_a_value_from_the_file_is_still_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ServerConfig(config=_file(tmp_path, "port: 70000\n"))
    assert caught.value.errors()[0]["loc"] == ("port",)


# -- `llmos server`, for real ---------------------------------------------------------------


def _server_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmos", "server", *args]


def _run_server_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    """A server command that is expected to exit by itself, quickly."""
    return subprocess.run(_server_cmd(*args), capture_output=True, text=True, timeout=60)


def _peer_cert(port: int, cafile: str, hostname: str) -> x509.Certificate:
    """The certificate the server presents, verified against ``cafile`` for ``hostname``."""
    context = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in ext.get_values_for_type(x509.IPAddress)
    }


def test_tls_sans_are_in_the_generated_certificate(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", "--tls-sans", "foo.example.com,10.9.8.7")
    try:
        cert = _peer_cert(running.port, running.ca, "foo.example.com")
        assert {"foo.example.com", "10.9.8.7", "127.0.0.1", socket.gethostname().lower()} <= (
            _sans(cert)
        )
        # A client that checks the name accepts each of them.
        _peer_cert(running.port, running.ca, "10.9.8.7")
    finally:
        assert running.stop() == 0, running.log()


def _make_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture
def own_cert(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(CA, server cert, server key) PEM files of the test's own making."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _make_cert("test-ca", ca_key)
    cert = _make_cert("test-server", key, ca, ca_key)
    paths = tmp_path / "own-ca.crt", tmp_path / "own.crt", tmp_path / "own.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_own_tls_cert_is_what_the_server_presents(
    tmp_path: Path, own_cert: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = own_cert
    running = start_server(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        presented = _peer_cert(running.port, str(ca), "127.0.0.1")
        assert presented == x509.load_pem_x509_certificate(cert.read_bytes())
    finally:
        assert running.stop() == 0, running.log()


def test_cacerts_verifies_the_presented_cert(
    tmp_path: Path, own_cert: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = own_cert
    running = start_server(
        tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca)
    )
    try:
        served = httpx.get(f"{running.url}/v1-public/cacerts", verify=False).text
        (tmp_path / "served.crt").write_text(served)
        _peer_cert(running.port, str(tmp_path / "served.crt"), "127.0.0.1")
    finally:
        assert running.stop() == 0, running.log()


def test_a_second_server_on_the_same_data_dir_is_refused(fresh_server: RunningServer) -> None:
    second = _run_server_cmd(
        "--data-dir", str(fresh_server.data_dir), "--port", str(free_port()),
        "--bind-address", "127.0.0.1",
    )  # fmt: skip
    assert second.returncode == 1, second
    assert f"already using {fresh_server.data_dir}" in second.stderr
    assert "another --data-dir" in second.stderr and "Traceback" not in second.stderr
    with fresh_server.client() as client:  # the first one is untouched
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--port", "0"], ["port", "--port", "greater than or equal to 1", "got 0"]),
        (["--port", "http"], ["--port", "valid integer"]),
        (["--log-level", "loud"], ["--log-level", "loud", "debug"]),
        (["--max-request-bytes", "10"], ["max_request_bytes", "got 10"]),
    ],
)
def test_a_bad_flag_value_exits_2_naming_the_field(
    tmp_path: Path, flags: list[str], words: list[str]
) -> None:
    result = _run_server_cmd("--data-dir", str(tmp_path / "data"), *flags)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_a_bad_env_value_exits_2_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LLMOS_PORT": "eighty"}
    result = subprocess.run(
        _server_cmd("--data-dir", str(tmp_path / "data")),
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result
    assert "LLMOS_PORT" in result.stderr and "'eighty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_settings_take_commas_or_json_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOS_TLS_SANS", "a.example.com, 10.0.0.9")
    assert ServerConfig().tls_sans == ["a.example.com", "10.0.0.9"]
    monkeypatch.setenv("LLMOS_TLS_SANS", '["b.example.com"]')
    assert ServerConfig().tls_sans == ["b.example.com"]
    assert ServerConfig(tls_sans="c,d").tls_sans == ["c", "d"]


def test_config_file_sets_the_port(tmp_path: Path) -> None:
    port = free_port()
    path = _file(tmp_path, f"port: {port}\nbind-address: 127.0.0.1\ndataDir: {tmp_path / 'data'}\n")
    running = RunningServer(tmp_path / "data", port)
    running.log_path = tmp_path / "server.log"
    with running.log_path.open("wb") as log:
        running.proc = subprocess.Popen(
            _server_cmd("--config", str(path)), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        running.wait_ready(30)
        assert f"LLMOS is ready at https://127.0.0.1:{port}" in running.log()
    finally:
        assert running.stop() == 0, running.log()


def test_sigterm_stops_cleanly(fresh_server: RunningServer) -> None:
    assert fresh_server.stop(signal.SIGTERM) == 0
    assert fresh_server.log().rstrip().endswith("LLMOS stopped")


def test_metrics_allow_list_lets_prometheus_scrape_without_a_token(tmp_path: Path) -> None:
    allowed = start_server(tmp_path / "allowed", "--metrics-allow-from", "127.0.0.0/8")
    try:
        with allowed.client() as anonymous:
            response = anonymous.get("/metrics")
            assert response.status_code == 200
            assert "llmos_node_memory_total_bytes" in response.text
    finally:
        allowed.stop()


def test_metrics_allow_list_refuses_what_is_not_a_network(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmos",
            "server",
            "--data-dir",
            str(tmp_path / "d"),
            "--metrics-allow-from",
            "prometheus.local",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'prometheus.local' is not an address or network" in result.stderr
