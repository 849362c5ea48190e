"""Data lifecycle: exporting an account, deleting an account or an org, plan retention.

Deletions are checked in the database itself, table by table: every table with an ``org_id``
column is asked for the deleted org's rows, so a table added later is checked too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.websockets import WebSocketDisconnect

from plancast.server.domain import audit, plans, projects
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.retention import PlanRetention
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    MS,
    Server,
    load_settings,
    new_key,
    openai_creds,
    query,
    recv,
    running,
    start_message,
    start_stream,
    text_cells,
    wait_process_gone,
)
from tests.server.team import (
    PASSWORD,
    Mailbox,
    bearer,
    call,
    error_code,
    fill,
    flush_audit,
    invite,
    mailbox_fixture,  # noqa: F401  (the fixture "mailbox")
    me,
    org_rows,
    sign_up,
    team_settings,
)

DAY_S = 86400.0
PLAN_TABLES = ("plans", "versions", "branches", "context_items", "messages", "changes", "usage")


@pytest.fixture
def team(data_dir: Path, mailbox: Mailbox) -> Iterator[Server]:
    """Team mode where anyone may sign up, each with an org of their own."""
    with running(team_settings(data_dir, mailbox, signup="open")) as server:
        yield server


def join(team: Server, mailbox: Mailbox, owner: str, token: str, email: str, role: str) -> None:
    """The account of ``token`` joins the org of ``owner``, as ``role``, then switches back."""
    home = me(team, token)["org_id"]
    code = invite(team, mailbox, owner, email, role)
    assert call(team, "POST", "/api/v1/invites/accept", token, {"code": code}).status_code == 200
    assert call(team, "POST", "/api/v1/account/org", token, {"org_id": home}).status_code == 200


# -- export -----------------------------------------------------------------------------------


def test_export_holds_your_data_and_no_other_orgs(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bea = sign_up(team, mailbox, "bea@b.example")
    fill(team, ann, emulator, "ann-own")
    fill(team, bea, emulator, "bea-shared")
    join(team, mailbox, bea, ann, "ann@a.example", "member")

    response = call(team, "GET", "/api/v1/account/export", ann)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    text = json.dumps(data)
    ann_org, bea_org = me(team, ann)["org_id"], me(team, bea)["org_id"]
    assert data["user"]["email"] == "ann@a.example"
    assert {(m["org_id"], m["role"], m["only_member"]) for m in data["memberships"]} == {
        (ann_org, "owner", True),
        (bea_org, "member", False),
    }
    assert list(data["orgs"]) == [ann_org]
    content = data["orgs"][ann_org]
    assert [p["name"] for p in content["plans"]] == ["plan ann-own"]
    assert [c["content"] for c in content["context_items"]] == ["note text ann-own"]
    assert "prompt ann-own" in [m["content"] for m in content["messages"]]
    assert {c["op"]["path"] for c in content["changes"]} == {"src/app.py", "README.md"}
    assert content["usage"] and content["streams"] and content["versions"]
    assert len(data["sessions"]) == 1 and "token" not in json.dumps(data["sessions"])
    # Nothing of the other org's plans, and nothing secret.
    assert "bea-shared" not in text
    assert data["streams_in_shared_orgs"] == []
    ann_id = me(team, ann)["user_id"]
    stored_hash = query(team.data_dir, "SELECT password_hash FROM users WHERE id = ?", ann_id)
    for secret in (PASSWORD, ann, ann[4:], stored_hash[0][0], "password_hash", "token_hash"):
        assert secret not in text
    # The export is in the audit log.
    actions = query(team.data_dir, "SELECT action FROM audit_log WHERE user_id = ?", ann_id)
    assert ("account.exported",) in actions


# -- deleting an account ----------------------------------------------------------------------


def test_deleting_an_account_removes_the_user_and_their_only_org(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bea = sign_up(team, mailbox, "bea@b.example")
    ann_id, ann_org = me(team, ann)["user_id"], me(team, ann)["org_id"]
    bea_org = me(team, bea)["org_id"]
    fill(team, ann, emulator, "ann-own")
    _, bea_plan = fill(team, bea, emulator, "bea-kept")
    join(team, mailbox, bea, ann, "ann@a.example", "admin")
    other = call(
        team, "POST", "/api/v1/auth/signin", None, {"email": "ann@a.example", "password": PASSWORD}
    ).json()["token"]
    assert org_rows(team.data_dir, ann_org)

    for body, expected in (
        ({}, (400, "invalid_request")),
        ({"password": "not the password"}, (403, "forbidden")),
    ):
        response = call(team, "DELETE", "/api/v1/account", ann, body)
        assert (response.status_code, error_code(response)) == expected
    assert me(team, ann)["user_id"] == ann_id  # still there

    response = call(team, "DELETE", "/api/v1/account", ann, {"password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "deleted": ann_id,
        "orgs_deleted": [ann_org],
        "orgs_left": [bea_org],
        "sessions_ended": 2,
    }
    for token in (ann, other):
        gone = call(team, "GET", "/api/v1/account", token)
        assert (gone.status_code, error_code(gone)) == (401, "session_expired")
    # The user's rows, read in the database.
    for table in ("users", "sessions", "auth_codes"):
        column = "id" if table == "users" else "user_id"
        assert query(team.data_dir, f"SELECT * FROM {table} WHERE {column} = ?", ann_id) == []
    assert query(team.data_dir, "SELECT * FROM memberships WHERE user_id = ?", ann_id) == []
    assert query(team.data_dir, "SELECT * FROM orgs WHERE id = ?", ann_org) == []
    left = org_rows(team.data_dir, ann_org)
    assert set(left) <= {"audit_log"}, left  # the entry of the deletion itself
    assert query(team.data_dir, "SELECT action FROM audit_log WHERE org_id = ?", ann_org) == [
        ("org.deleted",)
    ]
    # Their address is nowhere in the database, in any table.
    for table, cells in text_cells(team.data_dir).items():
        assert not any("ann@a.example" in cell for cell in cells), table
    # The shared org keeps its plan; the member is gone from it.
    assert call(team, "GET", f"/api/v1/plans/{bea_plan}", bea).status_code == 200
    members = call(team, "GET", "/api/v1/org/members", bea).json()["members"]
    assert [m["email"] for m in members] == ["bea@b.example"]


def test_the_last_owner_of_a_shared_org_cannot_delete_the_account(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bob = sign_up(team, mailbox, "bob@b.example")
    join(team, mailbox, ann, bob, "bob@b.example", "member")
    ann_org = me(team, ann)["org_id"]
    response = call(team, "DELETE", "/api/v1/account", ann, {"password": PASSWORD})
    assert (response.status_code, error_code(response)) == (409, "conflict")
    assert "last owner" in response.json()["error"]["message"]
    assert me(team, ann)["orgs"]  # nothing was deleted
    bob_id = me(team, bob)["user_id"]
    promoted = call(team, "PATCH", f"/api/v1/org/members/{bob_id}", ann, {"role": "owner"})
    assert promoted.status_code == 200
    response = call(team, "DELETE", "/api/v1/account", ann, {"password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["orgs_left"] == [ann_org]
    roles = query(team.data_dir, "SELECT user_id, role FROM memberships WHERE org_id = ?", ann_org)
    assert roles == [(bob_id, "owner")]


def test_deleting_an_account_stops_its_running_stream(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    ann_org = me(team, ann)["org_id"]
    team.auth = bearer(ann)
    plan = team.new_plan()
    emulator.push(Reply(text="slow " * 400, chunk_chars=5, trickle=20 * MS))
    with team.connect() as ws:
        start_stream(ws, start_message(plan, openai_creds(emulator)))
        emulator.wait_for_requests(1)
        (worker,) = team.app.state.workers.busy_pids()
        response = call(team, "DELETE", "/api/v1/account", ann, {"password": PASSWORD})
        assert response.status_code == 200, response.text
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                recv(ws)
        assert closed.value.code == 4401
    wait_process_gone(worker)
    assert set(org_rows(team.data_dir, ann_org)) <= {"audit_log"}


# -- deleting an org --------------------------------------------------------------------------


def test_only_an_owner_deletes_an_org_and_every_row_of_it_goes(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bob = sign_up(team, mailbox, "bob@b.example")
    cat = sign_up(team, mailbox, "cat@c.example")
    org = me(team, ann)["org_id"]
    org_name = me(team, ann)["orgs"][0]["name"]
    join(team, mailbox, ann, bob, "bob@b.example", "admin")
    join(team, mailbox, ann, cat, "cat@c.example", "member")
    for token in (bob, cat):  # act in ann's org
        assert call(team, "POST", "/api/v1/account/org", token, {"org_id": org}).status_code == 200
    fill(team, ann, emulator, "doomed")
    invite(team, mailbox, ann, "dan@d.example")  # a pending invite
    key = {"Idempotency-Key": "key-" + new_key("")[:20]}
    project = team.client.post(
        "/api/v1/projects", json={"name": "kept response"}, headers=bearer(ann) | key
    )
    assert project.status_code == 201
    flush_audit(team)  # the stream's worker entries, written in the background
    before = org_rows(team.data_dir, org)
    for table in ("projects", "plans", "messages", "changes", "usage", "streams", "invites"):
        assert before.get(table), table
    assert before.get("memberships") == 3 and before.get("idempotency_keys") == 1
    stream_ids = [
        r[0] for r in query(team.data_dir, "SELECT id FROM streams WHERE org_id = ?", org)
    ]

    for token in (bob, cat):
        response = call(team, "DELETE", "/api/v1/org", token, {"confirm": org_name})
        assert (response.status_code, error_code(response)) == (403, "forbidden")
    response = call(team, "DELETE", "/api/v1/org", ann, {"confirm": org_name + "!"})
    assert (response.status_code, error_code(response)) == (400, "invalid_request")
    assert org_rows(team.data_dir, org) == before

    response = call(team, "DELETE", "/api/v1/org", ann, {"confirm": org_name})
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": org, "projects": 2, "plans": 1, "members": 3}
    after = org_rows(team.data_dir, org)
    assert after == {"audit_log": 1}, after
    (entry,) = query(
        team.data_dir, "SELECT action, target, detail FROM audit_log WHERE org_id = ?", org
    )
    assert entry[:2] == ("org.deleted", org)
    assert json.loads(entry[2]) == {"projects": 2, "plans": 1, "members": 3}
    assert query(team.data_dir, "SELECT * FROM orgs WHERE id = ?", org) == []
    for stream_id in stream_ids:
        events = query(team.data_dir, "SELECT * FROM stream_events WHERE stream_id = ?", stream_id)
        assert events == []
    assert query(team.data_dir, "SELECT count(*) FROM sessions WHERE org_id IS NULL")[0][0] >= 3
    # The members stay, without the org: their sessions act in no org until they switch.
    for token in (ann, bob, cat):
        response = call(team, "GET", "/api/v1/projects", token)
        assert (response.status_code, error_code(response)) == (403, "forbidden")
        assert org not in [o["id"] for o in me(team, token)["orgs"]]


@pytest.mark.sqlite_only
def test_a_deleted_orgs_content_is_not_left_in_the_sqlite_files(
    team: Server, mailbox: Mailbox
) -> None:
    """``secure_delete`` overwrites the rows, and the WAL is emptied right after."""
    ann = sign_up(team, mailbox, "ann@a.example")
    team.auth = bearer(ann)
    marker = new_key("deleted-content-")  # in names, which are stored as they are
    team.new_plan(team.new_project(marker), name=marker)

    def files_holding_it() -> list[str]:
        return [
            p.name for p in team.data_dir.glob("plancast.db*") if marker.encode() in p.read_bytes()
        ]

    assert files_holding_it(), "the check would prove nothing"
    name = me(team, ann)["orgs"][0]["name"]
    assert call(team, "DELETE", "/api/v1/org", ann, {"confirm": name}).status_code == 200
    assert files_holding_it() == []


# -- retention --------------------------------------------------------------------------------


def _age(data_dir: Path, plan_id: str, days: float) -> None:
    """Make the plan look untouched for ``days``: its times and its versions'."""
    at = time.time() - days * DAY_S
    query(data_dir, "UPDATE plans SET created_at = ?, updated_at = ? WHERE id = ?", at, at, plan_id)
    query(data_dir, "UPDATE versions SET created_at = ? WHERE plan_id = ?", at, plan_id)


def _plan_rows(data_dir: Path, plan_id: str) -> dict[str, int]:
    counts = {
        table: query(
            data_dir,
            f"SELECT count(*) FROM {table} WHERE {'id' if table == 'plans' else 'plan_id'} = ?",
            plan_id,
        )[0][0]
        for table in PLAN_TABLES
    }
    return {table: n for table, n in counts.items() if n}


def test_retention_deletes_old_plans_at_start_and_keeps_recent_ones(
    data_dir: Path, emulator: Emulator
) -> None:
    with running(load_settings(data_dir)) as server:
        old = server.new_plan(name="old")
        emulator.push(Reply(text="an old reply"))
        server.run_stream(start_message(old, openai_creds(emulator)))
        recent = server.new_plan(name="recent")
        worked_on = server.new_plan(name="old but worked on")
        assert {"messages", "usage", "versions"} <= set(_plan_rows(data_dir, old))
    _age(data_dir, old, 10)
    _age(data_dir, worked_on, 10)
    query(  # a new version (a context load, say) is a change of the plan
        data_dir,
        "UPDATE versions SET created_at = ? WHERE plan_id = ? AND number = 1",
        time.time(),
        worked_on,
    )
    with running(load_settings(data_dir, plan_retention_days=5)) as server:
        assert _plan_rows(data_dir, old) == {}
        assert "plans" in _plan_rows(data_dir, recent)
        assert "plans" in _plan_rows(data_dir, worked_on)
        assert server.get(f"/api/v1/plans/{old}").status_code == 404
    entries = query(data_dir, "SELECT org_id, detail FROM audit_log WHERE action = 'plans.purged'")
    assert [(org, json.loads(detail)["plans"]) for org, detail in entries] == [(LOCAL_ORG_ID, 1)]


async def test_retention_runs_again_on_its_period_and_stops_on_close(
    engine: AsyncEngine, data_dir: Path
) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "p")
        first = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, "first")
        second = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, "second")
    _age(data_dir, first.id, 3)
    retention = PlanRetention(engine, 2, every_s=50 * MS)
    await retention.start()  # the first purge, before it returns
    try:
        assert _plan_rows(data_dir, first.id) == {}
        assert "plans" in _plan_rows(data_dir, second.id)
        _age(data_dir, second.id, 3)
        deadline = time.monotonic() + 5
        while _plan_rows(data_dir, second.id) and time.monotonic() < deadline:
            await asyncio.sleep(20 * MS)
        assert _plan_rows(data_dir, second.id) == {}
    finally:
        await retention.close()
    async with engine.connect() as conn:
        counts = [e.detail["plans"] for e in await audit.list_entries(conn, LOCAL_ORG_ID)]
    assert counts == [1, 1]


def test_retention_off_keeps_everything(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        plan = server.new_plan()
    _age(data_dir, plan, 1000)
    with running(load_settings(data_dir)) as server:
        assert server.get(f"/api/v1/plans/{plan}").status_code == 200
    assert query(data_dir, "SELECT count(*) FROM audit_log WHERE action = 'plans.purged'") == [(0,)]
