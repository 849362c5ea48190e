"""TLS served by ``plancast-server`` itself: TLS 1.3 only, HTTPS and WSS, and loud bad settings.

The handshakes are the point here, so a real ``plancast-server`` process serves on a loopback
port (one for the module: starting one costs seconds), with a throwaway self-signed
certificate. How bad certificate and key settings are reported is checked on ``tls_context``
in-process, and once through the real command for its exit status and output.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import logging
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from plancast.server.config import Settings
from plancast.server.serving import TLSSettingsError, is_loopback, tls_context, warn_if_exposed
from plancast.shared import SUBPROTOCOL, Ping, Pong, decode_server, encode

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 20.0
KEY_MARKER = "not-a-key-but-secret-looking"  # written into a bad key file; never echoed


@dataclass(frozen=True)
class Pair:
    certfile: Path
    keyfile: Path


def write_pair(folder: Path, *, passphrase: bytes | None = None) -> Pair:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, and its key (0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plancast test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if passphrase is None
        else serialization.BestAvailableEncryption(passphrase)
    )
    pair = Pair(folder / "cert.pem", folder / "key.pem")
    pair.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(pair.keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
    return pair


def client_context(pair: Pair, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that trusts only the test certificate, as a user who pinned it would."""
    context = ssl.create_default_context(cafile=pair.certfile)
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = maximum
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, **settings: str) -> dict[str, str]:
    """A bare environment: none of the developer's settings or keys reach the server."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    env.update({"PLANCAST_" + name.upper(): value for name, value in settings.items()})
    return env


def get(port: int, context: ssl.SSLContext, path: str) -> tuple[http.client.HTTPResponse, str]:
    """``GET path`` over HTTPS; the response (read) and the TLS version agreed."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert isinstance(conn.sock, ssl.SSLSocket)
        return response, str(conn.sock.version())
    finally:
        conn.close()


@dataclass
class TLSServer:
    port: int
    pair: Pair
    data_dir: Path

    @property
    def token(self) -> str:
        return (self.data_dir / "local-token").read_text().strip()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    root = tmp_path_factory.mktemp("tls")
    pair = write_pair(root / "tls")
    port = free_port()
    data_dir = root / "data"
    env = server_env(
        root / "home",
        port=str(port),
        data_dir=str(data_dir),
        idle_workers="0",  # no stream runs here
        tls_certfile=str(pair.certfile),
        tls_keyfile=str(pair.keyfile),
    )
    log = root / "server.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(BIN / "plancast-server")], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        context = client_context(pair)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"plancast-server exited early:\n{log.read_text()}")
            try:
                if get(port, context, "/healthz")[0].status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"plancast-server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield TLSServer(port, pair, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# -- the real server over TLS ---------------------------------------------------------------


def test_a_tls_13_client_gets_https_with_hsts(tls_server: TLSServer) -> None:
    response, version = get(tls_server.port, client_context(tls_server.pair), "/healthz")
    assert version == "TLSv1.3"
    assert response.status == 200
    assert response.getheader("Strict-Transport-Security") == "max-age=63072000"
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_an_api_error_over_tls_has_hsts_too(tls_server: TLSServer) -> None:
    response, _ = get(tls_server.port, client_context(tls_server.pair), "/api/v1/projects")
    assert response.status == 401
    assert response.getheader("Strict-Transport-Security") == "max-age=63072000"
    assert response.getheader("Cache-Control") == "no-store"


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The TLS version agreed on a fresh connection; ``ssl.SSLError`` if there is none."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return str(tls.version())


def test_a_client_capped_at_tls_12_fails_the_handshake(tls_server: TLSServer) -> None:
    # The same client allowed 1.3 succeeds, so the version is what fails it. (uvloop ends
    # the refused handshake by closing, so the error is an EOF rather than an alert.)
    capped_at_13 = client_context(tls_server.pair, maximum=ssl.TLSVersion.TLSv1_3)
    assert handshake(tls_server.port, capped_at_13) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(tls_server.port, client_context(tls_server.pair, maximum=ssl.TLSVersion.TLSv1_2))


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: TLSServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=5)
    try:
        with pytest.raises(ConnectionResetError):  # closed at once, nothing in plain text
            conn.request("GET", "/healthz")
            conn.getresponse().read()
    finally:
        conn.close()


def test_a_websocket_over_wss_without_an_origin_is_accepted(tls_server: TLSServer) -> None:
    # What the CLI does: no Origin header, the bearer token, the plancast subprotocol.
    with connect(
        f"wss://127.0.0.1:{tls_server.port}/api/v1/streams",
        ssl=client_context(tls_server.pair),
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {tls_server.token}"},
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        ws.send(encode(Ping(nonce="over-tls")))
        assert decode_server(str(ws.recv(timeout=5))) == Pong(nonce="over-tls")


# -- bad TLS settings -----------------------------------------------------------------------


def tls_settings(certfile: Path | None, keyfile: Path | None) -> Settings:
    overrides = {"tls_certfile": certfile, "tls_keyfile": keyfile}
    return Settings.load({k: str(v) for k, v in overrides.items() if v is not None}, environ={})


def test_no_tls_settings_mean_plain_http() -> None:
    assert tls_context(tls_settings(None, None)) is None


def test_the_context_refuses_anything_below_tls_13(tmp_path: Path) -> None:
    pair = write_pair(tmp_path)
    context = tls_context(tls_settings(pair.certfile, pair.keyfile))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_tls_settings_come_from_the_environment(tmp_path: Path) -> None:
    pair = write_pair(tmp_path)
    environ = {
        "PLANCAST_TLS_CERTFILE": str(pair.certfile),
        "PLANCAST_TLS_KEYFILE": str(pair.keyfile),
    }
    settings = Settings.load({}, environ=environ)
    assert (settings.tls_certfile, settings.tls_keyfile) == (pair.certfile, pair.keyfile)
    assert tls_context(settings) is not None


@pytest.mark.parametrize(
    ("given", "missing"), [("tls_certfile", "tls_keyfile"), ("tls_keyfile", "tls_certfile")]
)
def test_one_of_the_pair_alone_is_refused(tmp_path: Path, given: str, missing: str) -> None:
    pair = write_pair(tmp_path)
    settings = Settings.load({given: str(getattr(pair, given[4:]))}, environ={})
    with pytest.raises(TLSSettingsError) as caught:
        tls_context(settings)
    assert str(caught.value) == (
        f"{given} is set but {missing} is not: TLS needs both the certificate and its key"
    )


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    pair = write_pair(tmp_path)
    with pytest.raises(TLSSettingsError) as caught:
        tls_context(tls_settings(pair.certfile, tmp_path / "missing.pem"))
    assert str(caught.value) == (
        f"tls_keyfile: cannot read {tmp_path / 'missing.pem'}: No such file or directory"
    )
    with pytest.raises(TLSSettingsError, match=r"^tls_certfile: cannot read .*: Is a directory"):
        tls_context(tls_settings(tmp_path, pair.keyfile))


def test_an_encrypted_key_is_refused_without_a_prompt(tmp_path: Path) -> None:
    pair = write_pair(tmp_path, passphrase=b"correct horse")
    with pytest.raises(TLSSettingsError, match=r"^tls_keyfile: .*key.pem is encrypted"):
        tls_context(tls_settings(pair.certfile, pair.keyfile))


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    pair, other = write_pair(tmp_path / "a"), write_pair(tmp_path / "b")
    with pytest.raises(TLSSettingsError, match="the key does not match the certificate"):
        tls_context(tls_settings(pair.certfile, other.keyfile))


def test_a_file_that_is_not_pem_is_refused_without_quoting_it(tmp_path: Path) -> None:
    pair = write_pair(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text(f"-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n")
    for settings in (tls_settings(pair.certfile, junk), tls_settings(junk, pair.keyfile)):
        with pytest.raises(TLSSettingsError) as caught:
            tls_context(settings)
        message = str(caught.value)
        assert message.startswith("tls_certfile (") and "must be a PEM certificate" in message
        assert KEY_MARKER not in message


def test_the_command_exits_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    pair = write_pair(tmp_path / "tls")
    env = server_env(
        tmp_path / "home",
        port=str(free_port()),
        data_dir=str(tmp_path / "data"),
        tls_certfile=str(pair.certfile),
    )
    result = subprocess.run(
        [str(BIN / "plancast-server")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "plancast-server: tls_certfile is set but tls_keyfile is not: "
        "TLS needs both the certificate and its key"
    ]
    assert not (tmp_path / "data").exists()  # it stopped before doing anything


# -- plain HTTP beyond loopback -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("plancast.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_beyond_loopback_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="plancast.server"):
        warn_if_exposed(Settings.load({"host": "0.0.0.0"}, environ={}))
    (record,) = caplog.records
    assert record.name == "plancast.server" and record.levelno == logging.WARNING
    assert "0.0.0.0 without TLS" in record.getMessage()
    assert "TLS-terminating proxy" in record.getMessage()


def test_no_warning_on_loopback_or_with_tls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair = write_pair(tmp_path)
    with caplog.at_level(logging.DEBUG):
        warn_if_exposed(Settings.load({}, environ={}))
        warn_if_exposed(
            Settings.load(
                {
                    "host": "0.0.0.0",
                    "tls_certfile": str(pair.certfile),
                    "tls_keyfile": str(pair.keyfile),
                },
                environ={},
            )
        )
    assert caplog.records == []
