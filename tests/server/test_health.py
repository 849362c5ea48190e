"""``/healthz`` and ``/readyz``: no token, cheap, and a reason (never a URL) when not ready.

Readiness is checked against the database the app really uses: its recorded Alembic revision
is moved behind the code's head, or removed, and the probe must notice at once, and recover
when it is put back. The Host check (loopback only) applies to the probes as to every route.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from plancast.server.store.database import create_engine
from plancast.server.store.revisions import code_heads
from tests.server.helpers import Server, load_settings, query, running

HEAD = "0006"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_code_head_is_the_latest_migration() -> None:
    assert code_heads() == {HEAD}


def test_healthz_answers_without_a_token(server: Server) -> None:
    response = server.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert server.client.get("/api/v1/health").status_code == 200  # the API's own, kept


def test_readyz_is_ready_at_the_code_head(server: Server) -> None:
    response = server.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "revision": HEAD}


def test_readyz_is_quiet_in_the_log(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    # A probe every few seconds must not write lines (Alembic's context logs two per use).
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert server.client.get("/readyz").status_code == 200
    server_lines = [r for r in caplog.records if r.name.startswith(("plancast", "alembic"))]
    assert [r.getMessage() for r in server_lines if r.levelno >= logging.INFO] == []


def test_readyz_is_unavailable_while_the_database_is_behind(server: Server) -> None:
    query(server.data_dir, "UPDATE alembic_version SET version_num = '0002'")
    response = server.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["revision"] == "0002"
    assert body["reason"] == "the database is at revision 0002; this code needs " + HEAD

    query(server.data_dir, f"UPDATE alembic_version SET version_num = '{HEAD}'")
    assert server.client.get("/readyz").status_code == 200


def test_readyz_is_unavailable_when_no_migration_was_applied(server: Server) -> None:
    query(server.data_dir, "DELETE FROM alembic_version")
    response = server.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == ("the database has no migrations applied; it needs " + HEAD)
    query(server.data_dir, f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD}')")
    assert server.client.get("/readyz").status_code == 200


def test_readyz_names_no_url_when_the_database_cannot_be_reached(server: Server) -> None:
    port = free_port()  # nothing listens there: the connection is refused at once
    password = "pw-" + "7" * 20
    unreachable = create_engine(f"postgresql://plancast:{password}@127.0.0.1:{port}/plancast")
    real = server.app.state.db
    server.app.state.db = unreachable
    try:
        response = server.client.get("/readyz")
    finally:
        server.app.state.db = real
        asyncio.run(unreachable.dispose())
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert reason.startswith("the database cannot be reached (")
    for secret in (password, str(port), "127.0.0.1", "plancast:"):
        assert secret not in response.text


def test_readyz_is_unavailable_once_shutdown_began(server: Server) -> None:
    server.app.state.streams.closing = True  # what drain() sets first
    response = server.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "the server is shutting down"
    assert server.client.get("/healthz").status_code == 200  # alive all the same


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_naming_the_pod_ip_work_when_bound_to_all_interfaces(
    data_dir: Path, path: str
) -> None:
    with running(load_settings(data_dir, host="0.0.0.0")) as srv:
        response = srv.client.get(path, headers={"Host": "10.42.0.17:7526"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_on_loopback_the_host_check_still_refuses_other_names(server: Server, path: str) -> None:
    response = server.get(path, headers={"Host": "rebound.example:7526"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
