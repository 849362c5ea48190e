"""docker/Dockerfile, read statically: there is no Docker daemon to build it with in CI.

What matters is checked on the text of the final stage, since that is what ships: a non-root
user, no compiler, the port, a health check (which is also run, against a local stand-in for
the server over HTTP and over TLS), and only real PLANCAST_* settings.
"""

from __future__ import annotations

import datetime
import fnmatch
import http.server
import json
import re
import shlex
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plancast.server.config import DEFAULT_PORT, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"

BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|libc6?-dev|python3?-dev|cargo|rustc)\b"
)


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (each FROM starts one); continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        elif not stages:  # ARG before the first FROM
            continue
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def _all(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def test_parser_joins_continuations_and_splits_stages() -> None:
    text = "ARG X=1\nFROM a AS b\nRUN one \\\n  # note\n  two\nFROM c\nUSER 5\n"
    assert parse(text) == [
        [Instruction("FROM", "a AS b"), Instruction("RUN", "one two")],
        [Instruction("FROM", "c"), Instruction("USER", "5")],
    ]


def test_multi_stage_and_the_final_stage_copies_from_a_named_earlier_one(
    stages: list[list[Instruction]],
) -> None:
    assert len(stages) >= 2
    names = {
        args.split()[-1]
        for stage in stages[:-1]
        for args in _all(stage, "FROM")
        if " as " in args.lower()
    }
    copied_from = [
        m[1] for args in _all(stages[-1], "COPY") if (m := re.search(r"--from=(\S+)", args))
    ]
    assert copied_from, "the final stage copies nothing from the build stage"
    assert set(copied_from) <= names


def test_final_stage_runs_as_a_numeric_non_root_user(final: list[Instruction]) -> None:
    users = _all(final, "USER")
    assert users, "the final stage has no USER: it would run as root"
    user, _, group = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without the image's /etc/passwd.
    assert user.isdigit() and int(user) != 0, users[-1]
    assert not group or (group.isdigit() and int(group) != 0)


def test_no_build_tools_in_the_final_stage(final: list[Instruction]) -> None:
    for run in _all(final, "RUN"):
        assert not BUILD_TOOLS.search(run), run
        assert not re.search(r"\b(apt-get|apt|apk)\s+(-\S+\s+)*install\b", run), run
    assert not any("/wheels" in args for args in _all(final, "COPY"))


def test_build_is_pinned_by_the_constraints_file(stages: list[list[Instruction]]) -> None:
    installs = [run for stage in stages for run in _all(stage, "RUN") if "pip install" in run]
    assert installs and all("-c requirements/constraints.txt" in run for run in installs)
    assert (ROOT / "requirements" / "constraints.txt").is_file()


def test_copied_sources_exist_and_are_not_docker_ignored(stages: list[list[Instruction]]) -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages[:-1]:
        for args in _all(stage, "COPY"):
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_port_host_and_settings(final: list[Instruction]) -> None:
    assert str(DEFAULT_PORT) in " ".join(_all(final, "EXPOSE")).split()
    env = " ".join(_all(final, "ENV"))
    assert re.search(r"\bPLANCAST_HOST=0\.0\.0\.0\b", env), "the server would bind loopback only"
    names = set(re.findall(r"\bPLANCAST_[A-Z0-9_]+", DOCKERFILE.read_text()))
    assert names, "no PLANCAST_* setting at all"
    assert names <= {s.env for s in SETTINGS}


def _healthcheck_argv(final: list[Instruction]) -> list[str]:
    (check,) = _all(final, "HEALTHCHECK")
    exec_form = re.search(r"\bCMD\s+(\[.*\])\s*$", check)
    assert exec_form, "HEALTHCHECK should use the exec form (no shell in the way)"
    argv: list[str] = json.loads(exec_form[1])
    return argv


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for a public-looking name: the check must not verify it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plancast.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@pytest.fixture(params=["http", "https"])
def stand_in(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[http.server.HTTPServer]:
    """A server answering /healthz on loopback, over TLS 1.3 only as plancast-server does."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Probe)
    if request.param == "https":
        certfile, keyfile = _self_signed(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        monkeypatch.setenv("PLANCAST_TLS_CERTFILE", str(certfile))
        monkeypatch.setenv("PLANCAST_TLS_KEYFILE", str(keyfile))
    monkeypatch.setenv("PLANCAST_PORT", str(server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_healthcheck_probes_healthz_and_fails_when_it_fails(
    final: list[Instruction], stand_in: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = _healthcheck_argv(final)
    assert argv[0] == "python", "the slim image has python, not curl"
    assert "/healthz" in " ".join(argv)
    command = [sys.executable, *argv[1:]]
    monkeypatch.setattr(_Probe, "status", 200)
    ok = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    monkeypatch.setattr(_Probe, "status", 503)
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0
