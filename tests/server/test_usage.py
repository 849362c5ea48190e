"""Usage metadata: one row per model call, read back by plan and by project, and nothing else.

The last test is the privacy check of the issue: a stream's reply carries a marker, and the
marker must turn up in no usage row, nor in any table other than the plan's own history.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from plancast.server.domain import plans, projects
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.domain.usage import Call, summarize
from plancast.server.store.schema import orgs, usage
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    check_sequence,
    openai_creds,
    start_message,
    text_cells,
)

OTHER_ORG = "org_other"


def add_calls(server: Server, org_id: str, plan_id: str, *calls: tuple[Any, ...]) -> None:
    """Usage rows as the engine writes them: (model, role, in, out, first_token_ms, ms)."""

    async def go() -> None:
        async with server.app.state.db.begin() as conn:
            for model, role, tokens_in, tokens_out, first, duration in calls:
                await conn.execute(
                    usage.insert().values(
                        id=f"use_{uuid.uuid4().hex[:16]}",
                        org_id=org_id,
                        plan_id=plan_id,
                        stream_id=None,
                        model=model,
                        role=role,
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                        first_token_ms=first,
                        duration_ms=duration,
                        created_at=0.0,
                    )
                )

    portal = server.client.portal
    assert portal is not None
    portal.call(go)


def other_org_plan(server: Server) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        async with server.app.state.db.begin() as conn:
            await conn.execute(orgs.insert().values(id=OTHER_ORG, name="other", created_at=0.0))
            project = await projects.create_project(conn, OTHER_ORG, "theirs")
            plan = await plans.create_plan(conn, OTHER_ORG, project.id, None)
            return project.id, plan.id

    portal = server.client.portal
    assert portal is not None
    return portal.call(go)


def group(groups: list[dict[str, Any]], key: str) -> dict[str, Any]:
    (found,) = [g for g in groups if g["key"] == key]
    return found


# -- the report ------------------------------------------------------------------------------


def test_a_plans_calls_are_summed_by_model_and_by_role(server: Server) -> None:
    project_id = server.new_project()
    plan_id = server.new_plan(project_id, name="mine")
    add_calls(
        server,
        LOCAL_ORG_ID,
        plan_id,
        ("openai/gpt-4.1", "planner", 1000, 200, 300, 4000),
        ("openai/gpt-4.1", "planner", 3000, 400, 500, 6000),
        ("openai/gpt-4.1-mini", "committer", 50, 10, 100, 700),
        ("openai/gpt-4.1-mini", "namer", 20, 5, None, 200),  # failed before its first token
    )
    report = server.ok("GET", f"/api/v1/plans/{plan_id}/usage")
    assert report["plan_id"] == plan_id
    assert [g["key"] for g in report["by_model"]] == ["openai/gpt-4.1", "openai/gpt-4.1-mini"]
    assert group(report["by_model"], "openai/gpt-4.1") == {
        "key": "openai/gpt-4.1",
        "calls": 2,
        "input_tokens": 4000,
        "output_tokens": 600,
        "duration_ms": 10000,
        "median_first_token_ms": 400,
    }
    mini = group(report["by_model"], "openai/gpt-4.1-mini")
    assert mini["median_first_token_ms"] == 100  # the call without a first token is left out
    # Roles in the order they are shown everywhere (planner first), not by name.
    assert [g["key"] for g in report["by_role"]] == ["planner", "namer", "committer"]
    assert group(report["by_role"], "namer")["median_first_token_ms"] is None
    assert report["total"] == {
        "key": "total",
        "calls": 4,
        "input_tokens": 4070,
        "output_tokens": 615,
        "duration_ms": 10900,
        "median_first_token_ms": 300,
    }
    assert report["by_plan"] == [report["total"] | {"key": plan_id, "name": "mine"}]


def test_a_plan_without_calls_has_an_empty_report(server: Server, plan_id: str) -> None:
    report = server.ok("GET", f"/api/v1/plans/{plan_id}/usage")
    assert report["by_model"] == report["by_role"] == report["by_plan"] == []
    assert report["total"] == {
        "key": "total",
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "duration_ms": 0,
        "median_first_token_ms": None,
    }


def test_a_project_report_covers_its_plans_and_no_other(server: Server) -> None:
    project_id = server.new_project("one")
    first = server.new_plan(project_id, name="first")
    second = server.new_plan(project_id, name="second")
    elsewhere = server.new_plan(server.new_project("two"))
    add_calls(server, LOCAL_ORG_ID, first, ("m/a", "planner", 10, 1, 10, 100))
    add_calls(server, LOCAL_ORG_ID, second, ("m/a", "planner", 20, 2, 30, 200))
    add_calls(server, LOCAL_ORG_ID, elsewhere, ("m/a", "planner", 999, 999, 1, 1))
    report = server.ok("GET", f"/api/v1/projects/{project_id}/usage")
    assert report["project_id"] == project_id
    assert (report["total"]["calls"], report["total"]["input_tokens"]) == (2, 30)
    assert report["total"]["median_first_token_ms"] == 20
    assert sorted((g["name"], g["calls"], g["input_tokens"]) for g in report["by_plan"]) == [
        ("first", 1, 10),
        ("second", 1, 20),
    ]
    # The plan's own report counts only its calls.
    mine = server.ok("GET", f"/api/v1/plans/{first}/usage")["total"]
    assert (mine["calls"], mine["input_tokens"]) == (1, 10)


def test_another_orgs_usage_is_not_found_and_never_counted(server: Server) -> None:
    their_project, their_plan = other_org_plan(server)
    add_calls(server, OTHER_ORG, their_plan, ("m/a", "planner", 5, 5, 5, 5))
    for path in (f"/api/v1/plans/{their_plan}/usage", f"/api/v1/projects/{their_project}/usage"):
        response = server.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    # A row of another org that names my plan (it cannot happen; still not counted).
    plan_id = server.new_plan()
    add_calls(server, OTHER_ORG, plan_id, ("m/a", "planner", 5, 5, 5, 5))
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/usage")["total"]["calls"] == 0


@pytest.mark.parametrize(
    ("firsts", "median"),
    [([], None), ([None], None), ([7], 7), ([1, 2], 2), ([1, 2, 10], 2), ([1, 4, None], 2)],
)
def test_the_first_token_time_is_the_median_of_the_calls_that_had_one(
    firsts: list[int | None], median: int | None
) -> None:
    calls = [Call("pl_x", "m/a", "planner", 1, 1, f, 10) for f in firsts]
    assert summarize(calls).total.median_first_token_ms == median


# -- a real stream ---------------------------------------------------------------------------

MARKER = "zq-reply-marker-" + uuid.uuid4().hex


def test_a_stream_leaves_metadata_only_outside_the_plans_history(
    server: Server, emulator: Emulator
) -> None:
    plan_id = server.new_plan(name="privacy-check")
    reply = f'Here is the plan {MARKER}.\n<pc:file path="notes.md">\n{MARKER}\n</pc:file>\n'
    emulator.push(Reply(text=reply, chunk_chars=16, input_tokens=321, output_tokens=54))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator), prompt="go"))
    end = check_sequence(events)
    assert end.status == "finished"
    server.wait_stream_ended(end.stream_id)

    report = server.ok("GET", f"/api/v1/plans/{plan_id}/usage")
    planner = group(report["by_role"], "planner")
    assert (planner["calls"], planner["input_tokens"], planner["output_tokens"]) == (1, 321, 54)
    assert group(report["by_model"], "openai/gpt-4.1")["calls"] >= 1
    assert planner["duration_ms"] >= 0 and planner["median_first_token_ms"] is not None

    cells = text_cells(server.data_dir)
    assert any("privacy-check" in v for v in cells["plans"])  # the scan reads real rows
    assert cells["usage"], "the stream wrote no usage row"
    holding = sorted(t for t, values in cells.items() if any(MARKER in v for v in values))
    # Encrypted at rest: the reply is in no table in clear, not even the plan's history
    # (messages, changes, stream events, context), and it reads back whole through the API.
    assert holding == [], holding
    assert MARKER in server.convo(plan_id)[-1]["content"]
    assert any(v.startswith("pce1:") for v in cells["messages"])
