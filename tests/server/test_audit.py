"""The audit log (what is recorded, who may read it, that it holds no secret) and org usage."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plancast.server.domain.audit import AuditAction, Entry, safe_model
from tests.emulator.server import Emulator
from tests.server.helpers import Server, query, running, wait_until
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
    sign_up,
    team_settings,
)

DAY_S = 86400


@pytest.fixture
def team(data_dir: Path, mailbox: Mailbox) -> Iterator[Server]:
    """Team mode where anyone may sign up, each with an org of their own."""
    with running(team_settings(data_dir, mailbox, signup="open")) as server:
        yield server


def entries(team: Server, token: str, **params: Any) -> list[dict[str, Any]]:
    response = team.client.get("/api/v1/org/audit", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def audit_text(data_dir: Path) -> str:
    """Every text an operator could read in the audit table (times left out: digits only)."""
    rows = query(data_dir, "SELECT org_id, user_id, action, target, detail FROM audit_log")
    return "\n".join(str(cell) for row in rows for cell in row)


def test_every_action_is_recorded_and_no_secret_is(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    tokens: list[str] = []
    ann = sign_up(team, mailbox, "ann@a.example")  # signed up, verified, signed in
    tokens.append(ann)
    ann_id = me(team, ann)["user_id"]
    org = me(team, ann)["org_id"]
    wrong = {"email": "ann@a.example", "password": "not the password"}
    assert call(team, "POST", "/api/v1/auth/signin", None, wrong).status_code == 401
    nobody = {"email": "nobody@a.example", "password": PASSWORD}
    assert call(team, "POST", "/api/v1/auth/signin", None, nobody).status_code == 401
    second = call(
        team, "POST", "/api/v1/auth/signin", None, {"email": "ann@a.example", "password": PASSWORD}
    ).json()
    tokens.append(second["token"])
    revoked = call(team, "DELETE", f"/api/v1/auth/sessions/{second['session_id']}", ann)
    assert revoked.status_code == 200
    # Invites: one accepted (at sign-up), one cancelled; a role change and a removal.
    bob = sign_up(
        team, mailbox, "bob@b.example", invite=invite(team, mailbox, ann, "bob@b.example")
    )
    tokens.append(bob)
    bob_id = me(team, bob)["user_id"]
    invite(team, mailbox, ann, "cat@c.example")
    (pending,) = call(team, "GET", "/api/v1/org/invites", ann).json()["invites"]
    assert call(team, "DELETE", f"/api/v1/org/invites/{pending['id']}", ann).status_code == 200
    assert (
        call(team, "PATCH", f"/api/v1/org/members/{bob_id}", ann, {"role": "admin"}).status_code
        == 200
    )
    # A stream: its start, and its worker's start and exit.
    _, plan = fill(team, ann, emulator, "audited")
    # A reset, an export, a removal, a sign-out.
    assert (
        call(
            team, "POST", "/api/v1/auth/reset-request", None, {"email": "ann@a.example"}
        ).status_code
        == 202
    )
    reset = {
        "email": "ann@a.example",
        "code": mailbox.code_for("ann@a.example"),
        "password": PASSWORD + "!",
    }
    ann = call(team, "POST", "/api/v1/auth/reset", None, reset).json()["token"]
    tokens.append(ann)
    assert call(team, "GET", "/api/v1/account/export", ann).status_code == 200
    assert call(team, "DELETE", f"/api/v1/org/members/{bob_id}", ann).status_code == 200
    assert call(team, "POST", "/api/v1/auth/signout", bob, {}).status_code == 200
    # An account deleted with its own org.
    dan = sign_up(team, mailbox, "dan@d.example")
    tokens.append(dan)
    gone = call(team, "DELETE", "/api/v1/account", dan, {"password": PASSWORD})
    assert gone.status_code == 200
    flush_audit(team)

    recorded = {AuditAction(a) for (a,) in query(team.data_dir, "SELECT action FROM audit_log")}
    assert recorded == set(AuditAction) - {AuditAction.PLANS_PURGED}  # test_lifecycle's
    failures = query(
        team.data_dir,
        "SELECT user_id, detail FROM audit_log WHERE action = 'account.signin_failed'",
    )
    assert {(u, json.loads(d)["reason"]) for u, d in failures} == {
        (ann_id, "wrong_password"),
        (None, "unknown_account"),
    }
    (started,) = query(
        team.data_dir,
        "SELECT org_id, user_id, detail FROM audit_log WHERE action = 'stream.started'",
    )
    assert started[:2] == (org, ann_id)
    detail = json.loads(started[2])
    assert detail["plan_id"] == plan and detail["model"] == "openai/gpt-4.1"
    exits = query(
        team.data_dir, "SELECT org_id, detail FROM audit_log WHERE action = 'worker.exited'"
    )
    assert (org, detail["worker_pid"]) in [(o, json.loads(d)["pid"]) for o, d in exits]

    # No secret, no address, no content: the scan of every text an operator can read.
    text = audit_text(team.data_dir)
    codes = [
        found
        for message in mailbox.messages
        for found in re.findall(
            r"pci_[A-Za-z0-9_-]+|\b\d{8}\b", message.get_payload(decode=True).decode()
        )
    ]
    assert len(codes) >= 6  # the check proves something
    secrets = [PASSWORD, PASSWORD + "!", *tokens, *(t[4:] for t in tokens), *codes]
    for secret in secrets:
        assert secret not in text
    for content in ("@", "audited", "prompt", "note text"):
        assert content not in text


def test_the_audit_log_is_for_owners_and_admins_and_pages(team: Server, mailbox: Mailbox) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bob = sign_up(team, mailbox, "bob@a.example")
    cat = sign_up(team, mailbox, "cat@a.example")
    org = me(team, ann)["org_id"]
    for token, email, role in ((bob, "bob@a.example", "admin"), (cat, "cat@a.example", "member")):
        code = invite(team, mailbox, ann, email, role)
        assert (
            call(team, "POST", "/api/v1/invites/accept", token, {"code": code}).status_code == 200
        )
    for path in ("/api/v1/org/audit", "/api/v1/org/usage"):
        response = call(team, "GET", path, cat)
        assert (response.status_code, error_code(response)) == (403, "forbidden"), path
        for token in (ann, bob):
            assert call(team, "GET", path, token).status_code == 200, path

    listed = entries(team, bob)
    assert all(e["org_id"] in (org, None) for e in listed)
    ids = [e["id"] for e in listed]
    assert ids == sorted(ids, reverse=True)
    # A member's own account entries show, another org's do not.
    bob_id = me(team, bob)["user_id"]
    assert any(e["action"] == "account.signed_in" and e["user_id"] == bob_id for e in listed)
    other = sign_up(team, mailbox, "eve@e.example")
    eve_id = me(team, other)["user_id"]
    assert all(e["user_id"] != eve_id for e in entries(team, ann))
    # Pages: limit, then before the last one seen; together they are the whole listing.
    pages, before = [], None
    while True:
        params = {"limit": 3} | ({"before": before} if before is not None else {})
        response = team.client.get("/api/v1/org/audit", params=params, headers=bearer(ann))
        page = response.json()
        pages.extend(e["id"] for e in page["entries"])
        before = page["next_before"]
        if before is None:
            break
    assert pages == [e["id"] for e in entries(team, ann, limit=500)]
    for bad in ({"limit": 0}, {"limit": 501}, {"before": "x"}):
        response = team.client.get("/api/v1/org/audit", params=bad, headers=bearer(ann))
        assert (response.status_code, error_code(response)) == (400, "invalid_request"), bad


def test_org_usage_sums_the_usage_rows_by_model_and_day(team: Server, mailbox: Mailbox) -> None:
    ann = sign_up(team, mailbox, "ann@a.example")
    bea = sign_up(team, mailbox, "bea@b.example")
    org, other_org = me(team, ann)["org_id"], me(team, bea)["org_id"]
    today = int(time.time()) // DAY_S * DAY_S
    rows = [  # org, model, day offset, input, output
        (org, "openai/gpt-4.1", 0, 100, 10),
        (org, "openai/gpt-4.1", 0, 200, 20),
        (org, "anthropic/claude", 0, 1000, 100),
        (org, "openai/gpt-4.1", -1, 300, 30),
        (org, "openai/gpt-4.1", -40, 5000, 500),  # outside the 30 days
        (other_org, "openai/gpt-4.1", 0, 7000, 700),  # another org's
    ]
    for n, (org_id, model, offset, tokens_in, tokens_out) in enumerate(rows):
        query(
            team.data_dir,
            "INSERT INTO usage (id, org_id, plan_id, stream_id, model, role, input_tokens, "
            "output_tokens, first_token_ms, duration_ms, created_at) "
            "VALUES (?, ?, 'pl_x', NULL, ?, 'planner', ?, ?, 5, 50, ?)",
            f"use_{n}",
            org_id,
            model,
            tokens_in,
            tokens_out,
            float(today + offset * DAY_S + 1),
        )
    day = time.strftime("%Y-%m-%d", time.gmtime(today))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(today - DAY_S))

    report = call(team, "GET", "/api/v1/org/usage", ann).json()
    assert report["days"] == 30 and report["since"] == today - 29 * DAY_S
    assert report["total"] == {
        "key": "total",
        "calls": 4,
        "input_tokens": 1600,
        "output_tokens": 160,
    }
    assert report["by_model"] == [
        {"key": "anthropic/claude", "calls": 1, "input_tokens": 1000, "output_tokens": 100},
        {"key": "openai/gpt-4.1", "calls": 3, "input_tokens": 600, "output_tokens": 60},
    ]
    assert [
        (d["day"], d["total"]["calls"], d["total"]["input_tokens"]) for d in report["by_day"]
    ] == [
        (yesterday, 1, 300),
        (day, 3, 1300),
    ]
    assert report["by_day"][1]["by_model"] == [
        {"key": "anthropic/claude", "calls": 1, "input_tokens": 1000, "output_tokens": 100},
        {"key": "openai/gpt-4.1", "calls": 2, "input_tokens": 300, "output_tokens": 30},
    ]
    only_today = call(team, "GET", "/api/v1/org/usage?days=1", ann).json()
    assert only_today["total"]["input_tokens"] == 1300
    wide = call(team, "GET", "/api/v1/org/usage?days=60", ann).json()
    assert wide["total"]["input_tokens"] == 6600
    for bad in ("0", "367", "x"):
        response = call(team, "GET", f"/api/v1/org/usage?days={bad}", ann)
        assert (response.status_code, error_code(response)) == (400, "invalid_request")


def test_an_entry_refuses_text_that_is_not_an_id_or_a_reason() -> None:
    Entry(AuditAction.SIGNED_IN, user_id="usr_abc", target="ses_abc", detail={"kind": "cli"})
    session_token, invite_code = "pcs_" + "a-b_" * 11, "pci_" + "Ab-_" * 8
    for bad in (
        "ann@a.example",
        "sk-" + "a" * 40,
        session_token,
        invite_code,
        "12345678",
        "two words",
        "x" * 200,
    ):
        with pytest.raises(ValueError):
            Entry(AuditAction.SIGNED_IN, target=bad)
        with pytest.raises(ValueError):
            Entry(AuditAction.SIGNED_IN, detail={"reason": bad})
    assert safe_model("openai/gpt-4.1") == "openai/gpt-4.1"
    assert safe_model("openai/sk-proj-" + "A1b2" * 10) == "other"
    assert safe_model("not a model") == "other"


def test_a_stream_start_is_recorded_even_though_it_is_written_later(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    """Stream and worker entries go through the background batch writer, not the stream."""
    ann = sign_up(team, mailbox, "ann@a.example")
    fill(team, ann, emulator, "batched")
    wait_until(
        lambda: any(e["action"] == "stream.started" for e in entries(team, ann)),
        timeout=5,
    )
