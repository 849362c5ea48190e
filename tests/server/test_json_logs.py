"""JSON log lines: one object a line, redacted, with the id of the request that caused them.

Logging is configured as ``plancast-server --log-format json`` does it, into a buffer, and
the app runs in-process; every line the buffer gets must parse on its own.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from plancast.server import logs
from plancast.server.app import create_app
from plancast.server.domain import projects
from plancast.server.web.request_ids import request_id_from
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    check_sequence,
    collect,
    load_settings,
    new_key,
    openai_creds,
    start_message,
    start_stream,
)

FIELDS = {"time", "level", "logger", "message"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@contextmanager
def configured(fmt: str) -> Iterator[io.StringIO]:
    """``logs.configure("info", fmt)`` into a buffer, as the entry point does; undone after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logs.KEY_CARRIERS}
    buffer = io.StringIO()
    logs.configure("info", fmt, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    with configured("json") as buffer:
        yield buffer


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object with the fields every line has."""
    parsed = []
    for line in buffer.getvalue().splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert FIELDS <= set(record), line
        assert TIME.fullmatch(record["time"]), record["time"]
        parsed.append(record)
    return parsed


def test_a_key_in_an_unhandled_error_never_reaches_the_json_lines(
    json_logs: io.StringIO, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()

    async def broken(*_args: object) -> None:
        raise RuntimeError(f"the store said: api_key={key}")

    monkeypatch.setattr(projects, "list_projects", broken)
    settings = load_settings(data_dir)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        token = (settings.data_dir / "local-token").read_text().strip()
        response = client.get(
            "/api/v1/projects",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42.a_b"},
        )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-42.a_b"

    assert key not in json_logs.getvalue()
    records = lines(json_logs)
    (error,) = [r for r in records if r["level"] == "ERROR"]
    assert error["logger"] == "plancast.server.web"
    assert error["message"] == "unhandled RuntimeError on GET /api/v1/projects"
    assert error["request_id"] == "req-42.a_b"
    assert "Traceback" in error["exc"]
    assert "RuntimeError: the store said: [redacted]" in error["exc"]
    # Lines logged outside any request (start-up, shutdown) carry no request id.
    ready = [r for r in records if r["message"].startswith("plancast server ready")]
    assert len(ready) == 1 and "request_id" not in ready[0]


def test_a_streams_lines_carry_the_id_of_the_connection_that_started_it(
    json_logs: io.StringIO, server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    emulator.push(Reply(text="hello"))
    with server.connect(headers=server.auth | {"X-Request-ID": "socket-7"}) as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator, key)))
        end = check_sequence(collect(ws, started.stream_id))
    assert end.status == "finished"
    server.wait_stream_ended(started.stream_id)
    records = lines(json_logs)
    stream_lines = [r for r in records if r["message"].startswith(f"stream {started.stream_id}")]
    assert [r["message"].split()[2] for r in stream_lines] == ["started", "ended"]
    assert {r["request_id"] for r in stream_lines} == {"socket-7"}
    assert key not in json_logs.getvalue()


def test_every_response_carries_a_request_id(server: Server) -> None:
    made = server.client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert server.client.get("/healthz").headers["x-request-id"] != made
    kept = server.client.get("/healthz", headers={"X-Request-ID": "lb-1234"})
    assert kept.headers["x-request-id"] == "lb-1234"
    refused = server.get("/api/v1/projects", headers={"Host": "rebound.example"})
    assert refused.status_code == 403 and refused.headers["x-request-id"]


@pytest.mark.parametrize(
    "sent",
    [
        "",
        "has space",
        "x" * 65,
        'quote"d',
        "multi\nline",
        "sk-" + "a1" * 16,  # shaped like a key: it would be written into every line
        "token=" + "b2" * 8,
    ],
)
def test_an_unusable_request_id_is_replaced(sent: str) -> None:
    made = request_id_from(sent)
    assert made != sent
    assert re.fullmatch(r"[0-9a-f]{32}", made)


@pytest.mark.parametrize("sent", ["a", "x" * 64, "A-Z_a.z-09", "0af4c2e1-5b8d-4d5e-9c3a"])
def test_a_sane_request_id_is_kept(sent: str) -> None:
    assert request_id_from(sent) == sent


def test_text_lines_stay_as_they_were() -> None:
    with configured("text") as buffer:
        logging.getLogger("plancast.server.test").warning("sent %s", "Bearer " + "c3" * 12)
        (line,) = buffer.getvalue().splitlines()
        assert line.endswith(" WARNING plancast.server.test: sent [redacted]")
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_json_lines_escape_what_could_split_them(json_logs: io.StringIO) -> None:
    logging.getLogger("plancast.server.test").info("one\nline\u2028still \u00e9 one")
    (record,) = lines(json_logs)
    assert record["message"] == "one\nline\u2028still \u00e9 one"
    assert json_logs.getvalue().isascii()
    assert "request_id" not in record and "exc" not in record
