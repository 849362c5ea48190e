"""Text the database cannot hold is refused with a typed error, on every backend alike.

SQLite stores a NUL character and a string longer than its column; PostgreSQL refuses both,
which would surface as an internal error. So the server refuses a NUL before any statement runs
(``store/database.py``), on SQLite too, and model names longer than their column when it parses
them; a model's NUL is kept as U+FFFD, the same in the live stream and in the plan.
"""

from __future__ import annotations

import json

import pytest

from plancast.server.store.database import storable
from plancast.shared import ModelSpec, PlancastError, encode
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    check_sequence,
    expect_error,
    openai_creds,
    reply_text,
    start_message,
)


def test_a_nul_in_a_request_body_is_invalid(server: Server) -> None:
    plan_id = server.new_plan()
    note = {"items": [{"kind": "note", "name": "n", "content": "a\x00b"}]}
    for path, body in (
        ("/api/v1/projects", {"name": "x\x00y"}),
        (f"/api/v1/plans/{plan_id}/context", note),
    ):
        response = server.post(path, body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/context")["items"] == []


def test_a_nul_in_an_id_of_the_path_is_not_found(server: Server) -> None:
    for path in ("/api/v1/plans/pl_a%00b", "/api/v1/streams/st_a%00b", "/api/v1/projects/a%00"):
        response = server.get(path)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.json()["error"]["code"] in ("invalid_request", "not_found")


def test_a_prompt_with_a_nul_is_a_bad_message(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    start = server.seal(start_message(plan_id, openai_creds(emulator), prompt="run this"))
    frame = json.loads(encode(start))
    frame["prompt"] = "run\x00this"  # as a client that skips the checks would send it
    with server.connect() as ws:
        ws.send_text(json.dumps(frame))
        assert expect_error(ws).code == "bad_message"
    assert server.streams(plan_id) == []


@pytest.mark.parametrize("model", ["openai/" + "m" * 194, "openai/gpt\x00-4.1", "openai/a\nb"])
def test_a_model_name_the_database_cannot_hold_is_invalid(model: str) -> None:
    with pytest.raises(PlancastError) as raised:
        ModelSpec.parse(model)
    assert raised.value.code == "invalid_request"
    assert model not in raised.value.message  # a mistyped model can be a pasted key


def test_a_model_name_as_wide_as_its_column_is_valid() -> None:
    assert ModelSpec.parse("openai/" + "m" * 193).name == "m" * 193


def test_a_nul_from_the_model_is_kept_as_a_replacement_character(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text="before\x00after\n", chunk_chars=4))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    assert check_sequence(events).status == "finished"
    assert reply_text(events) == "before\ufffdafter\n"
    assert server.convo(plan_id)[-1]["content"] == "before\ufffdafter\n"


def test_storable_changes_nothing_but_nul() -> None:
    text = "tab\tline\nünï ✓"
    assert storable(text) is text
    assert storable("\x00a\x00") == "\ufffda\ufffd"
