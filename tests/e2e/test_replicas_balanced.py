"""Two `plancast-server` replicas on one PostgreSQL, behind a balancer with no affinity (issue 8).

The real `plancast` command reaches them through a round-robin proxy: each new connection goes
to the other replica. A `tell` asks for its seal on the WebSocket that then carries its
`start`, so it works wherever its connections land; `ps`, `connect` and `stop` work through
either replica. A seal asked for over REST is still known to one replica only (docs/protocol.md,
"Sealing provider keys"), which the last test pins.

These run on PostgreSQL whatever ``PLANCAST_TEST_DB`` says (replicas need it).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from plancast.shared import (
    SUBPROTOCOL,
    Error,
    ProviderCredentials,
    StartStream,
    decode_server,
    encode,
    seal_credentials,
)
from tests import pg
from tests.e2e.conftest import Cli, LiveServer, start_server
from tests.e2e.proxy import CuttableProxy, cuttable_proxy
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

SLOW = "word " * 80  # 400 characters


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def balanced(tmp_path: Path) -> Iterator[tuple[CuttableProxy, list[LiveServer]]]:
    """Two replicas of one data folder (one local token, one master key) and one database."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    env = {**os.environ, "PLANCAST_DATABASE_URL": pg.postgres_url(folder)}
    servers: list[LiveServer] = []
    try:
        for n in range(2):  # one after the other: the second reads the first's key files
            servers.append(start_server(folder, tmp_path / f"replica-{n}.log", env=env))
        with cuttable_proxy(*map(port, servers)) as proxy:
            yield proxy, servers
    finally:
        for server in servers:
            server.stop()
        pg.forget(folder)


@pytest.fixture
def balanced_cli(
    tmp_path: Path,
    balanced: tuple[CuttableProxy, list[LiveServer]],
    emulator: Emulator,
    api_key: str,
) -> Cli:
    proxy, servers = balanced
    project = tmp_path / "project"
    project.mkdir()
    return Cli(
        project,
        {
            "PLANCAST_SERVER": f"http://127.0.0.1:{proxy.port}",
            "PLANCAST_DATA_DIR": str(servers[0].data_dir),
            "PLANCAST_MODEL": "openai/gpt-4.1",
            "OPENAI_API_KEY": api_key,
            "OPENAI_BASE_URL": emulator.base_url_openai,
        },
    )


def test_tell_works_whichever_replica_each_connection_reaches(
    balanced: tuple[CuttableProxy, list[LiveServer]], balanced_cli: Cli, emulator: Emulator
) -> None:
    proxy, servers = balanced
    cli = balanced_cli
    ok(cli("new"))
    for n in range(4):  # the connections of successive tells fall on both replicas in turn
        emulator.push(Reply(text=f"reply number {n} is here\n", chunk_chars=4))
        told = ok(cli("tell", f"prompt {n}"))
        assert f"reply number {n} is here" in told
    assert all(proxy.routed.count(port(s)) >= 2 for s in servers)
    convo = ok(cli("convo"))
    assert all(f"reply number {n} is here" in convo for n in range(4))


def test_ps_connect_and_stop_through_either_replica(balanced_cli: Cli, emulator: Emulator) -> None:
    cli = balanced_cli
    ok(cli("new"))
    emulator.push(Reply(text=SLOW, chunk_chars=5, trickle=0.05))  # ~4 s: still running at `ps`
    stream_id = ok(cli("tell", "--bg", "go slowly")).strip()
    assert stream_id.startswith("st_")
    listing = ok(cli("ps"))
    assert stream_id in listing and "running" in listing
    watched = ok(cli("connect", stream_id))  # live, through whichever replica
    assert watched.count("word") == 80
    again = ok(cli("connect", stream_id))  # replayed, through the other one
    assert again.count("word") == 80
    emulator.push(Reply(text=SLOW * 3, chunk_chars=5, trickle=0.05))
    stream_id = ok(cli("tell", "--bg", "go slowly again")).strip()
    assert f"stream {stream_id} stopped" in ok(cli("stop"))
    assert "[partial]" in ok(cli("convo"))


def test_a_rest_seal_is_known_to_its_replica_only(
    balanced: tuple[CuttableProxy, list[LiveServer]], emulator: Emulator
) -> None:
    """What the client no longer does: a seal over REST, then the start on a connection that
    the balancer sends to the other replica, is ``bad_seal``."""
    proxy, servers = balanced
    url = f"http://127.0.0.1:{proxy.port}"
    token = (servers[0].data_dir / "local-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as rest:
        project = rest.post("/api/v1/projects", json={"name": "p"}).json()["id"]
        plan = rest.post(f"/api/v1/projects/{project}/plans", json={}).json()["id"]
        seal = rest.post("/api/v1/seals").json()
    creds = ProviderCredentials("openai", api_key="sk-x", base_url=emulator.base_url_openai)
    sealed = seal_credentials(
        (creds,),
        public_key=seal["public_key"],
        seal_id=seal["seal_id"],
        expires_at=seal["expires_at"],
    )
    start = StartStream(
        request_id=uuid.uuid4().hex,
        plan_id=plan,
        mode="chat",
        prompt="hello",
        model="openai/gpt-4.1",
        seal_id=seal["seal_id"],
        sealed=sealed,
    )
    rest_port = proxy.routed[-1]
    with connect(
        url.replace("http", "ws") + "/api/v1/streams",
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers=headers,
    ) as ws:
        ws.send(encode(start))
        answer = decode_server(ws.recv(timeout=10))
    assert proxy.routed[-1] != rest_port  # the balancer sent the WebSocket to the other one
    assert isinstance(answer, Error) and answer.code == "bad_seal", answer
    assert emulator.requests == []
