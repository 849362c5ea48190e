"""Team mode: accounts, codes by real SMTP, sessions, orgs, roles and invites, end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from plancast.shared import SUBPROTOCOL, Attach, Stop
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    STREAMS_URL,
    Server,
    expect_error,
    openai_creds,
    query,
    running,
    send,
    start_message,
    start_stream,
)
from tests.server.team import (
    PASSWORD,
    Mailbox,
    bearer,
    call,
    error_code,
    fill,
    invite,
    mailbox_fixture,  # noqa: F401  (the fixture "mailbox")
    sign_up,
    team_fixture,  # noqa: F401  (the fixture "team")
    team_settings,
)
from tests.server.test_rest import CALLS, Ids


def test_sign_up_verify_and_use_the_api(team: Server, mailbox: Mailbox) -> None:
    token = sign_up(team, mailbox, "Ann@Example.org")
    me = call(team, "GET", "/api/v1/account", token).json()
    assert me["email"] == "ann@example.org"
    assert [o["role"] for o in me["orgs"]] == ["owner"]
    project = call(team, "POST", "/api/v1/projects", token, {"name": "demo"})
    assert project.status_code == 201
    assert call(team, "GET", "/api/v1/projects", None).status_code == 401
    assert not (team.data_dir / "local-token").exists()


def test_passwords_tokens_and_codes_are_never_stored(team: Server, mailbox: Mailbox) -> None:
    token = sign_up(team, mailbox, "ann@example.org")
    code = mailbox.code_for("ann@example.org")
    stored = query(team.data_dir, "SELECT password_hash FROM users WHERE email = 'ann@example.org'")
    assert stored[0][0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    for table in ("users", "sessions", "auth_codes"):
        dump = repr(query(team.data_dir, f"SELECT * FROM {table}"))
        for secret in (PASSWORD, token, code, token[4:]):
            assert secret not in dump, (table, "holds a secret")


def test_sign_up_is_by_invite_after_the_first_account(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    response = call(
        team,
        "POST",
        "/api/v1/auth/signup",
        None,
        {"email": "eve@example.org", "password": PASSWORD},
    )
    assert (response.status_code, error_code(response)) == (403, "forbidden")


def test_an_existing_address_gets_the_same_answer_and_a_warning(
    team: Server, mailbox: Mailbox
) -> None:
    sign_up(team, mailbox, "ann@example.org")
    before = len(mailbox.messages)
    body = {"email": "ann@example.org", "password": "another password!"}
    response = call(team, "POST", "/api/v1/auth/signup", None, body)
    assert response.status_code == 202
    assert len(mailbox.messages) == before + 1
    assert "has one already" in mailbox.messages[-1].get_payload(decode=True).decode()


def test_failed_sign_ins_are_rate_limited_per_account(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    wrong = {"email": "ann@example.org", "password": "not the password"}
    for _ in range(4):
        response = call(team, "POST", "/api/v1/auth/signin", None, wrong)
        assert (response.status_code, error_code(response)) == (401, "unauthorized")
    response = call(team, "POST", "/api/v1/auth/signin", None, wrong)  # the fifth sets a wait
    assert response.status_code == 401
    right = {"email": "ann@example.org", "password": PASSWORD}
    response = call(team, "POST", "/api/v1/auth/signin", None, right)
    assert (response.status_code, error_code(response)) == (429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1


def test_a_code_works_once_and_dies_after_five_wrong_tries(team: Server, mailbox: Mailbox) -> None:
    body = {"email": "ann@example.org", "password": PASSWORD}
    assert call(team, "POST", "/api/v1/auth/signup", None, body).status_code == 202
    code = mailbox.code_for("ann@example.org")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for attempt in range(5):
        response = call(
            team, "POST", "/api/v1/auth/verify", None, {"email": "ann@example.org", "code": wrong}
        )
        expected = (429, "rate_limited") if attempt == 4 else (400, "invalid_request")
        assert (response.status_code, error_code(response)) == expected
    response = call(
        team, "POST", "/api/v1/auth/verify", None, {"email": "ann@example.org", "code": code}
    )
    assert (response.status_code, error_code(response)) == (400, "invalid_request")
    # Signing in with the right password sends a fresh code, which works once.
    response = call(team, "POST", "/api/v1/auth/signin", None, body)
    assert (response.status_code, error_code(response)) == (403, "email_not_verified")
    fresh = mailbox.code_for("ann@example.org")
    good = {"email": "ann@example.org", "code": fresh}
    assert call(team, "POST", "/api/v1/auth/verify", None, good).status_code == 200
    assert call(team, "POST", "/api/v1/auth/verify", None, good).status_code == 400


def test_reset_ends_every_other_session(team: Server, mailbox: Mailbox) -> None:
    old = sign_up(team, mailbox, "ann@example.org")
    response = call(team, "POST", "/api/v1/auth/reset-request", None, {"email": "ann@example.org"})
    assert response.status_code == 202
    unknown = call(team, "POST", "/api/v1/auth/reset-request", None, {"email": "no@example.org"})
    assert unknown.status_code == 202 and unknown.json() == response.json()
    code = mailbox.code_for("ann@example.org")
    body = {"email": "ann@example.org", "code": code, "password": "a brand new password"}
    response = call(team, "POST", "/api/v1/auth/reset", None, body)
    assert response.status_code == 200
    new = response.json()["token"]
    gone = call(team, "GET", "/api/v1/account", old)
    assert (gone.status_code, error_code(gone)) == (401, "session_expired")
    assert call(team, "GET", "/api/v1/account", new).status_code == 200
    signin = {"email": "ann@example.org", "password": "a brand new password"}
    assert call(team, "POST", "/api/v1/auth/signin", None, signin).status_code == 200


def test_sessions_are_listed_revoked_and_expire_when_idle(team: Server, mailbox: Mailbox) -> None:
    first = sign_up(team, mailbox, "ann@example.org")
    body = {"email": "ann@example.org", "password": PASSWORD, "kind": "web"}
    second = call(team, "POST", "/api/v1/auth/signin", None, body).json()
    listed = call(team, "GET", "/api/v1/auth/sessions", first).json()["sessions"]
    assert sorted(s["kind"] for s in listed) == ["cli", "web"]
    assert [s["current"] for s in listed].count(True) == 1
    response = call(team, "DELETE", f"/api/v1/auth/sessions/{second['session_id']}", first)
    assert response.status_code == 200
    assert call(team, "GET", "/api/v1/account", second["token"]).status_code == 401
    # Unused for longer than session_idle_days: expired.
    query(team.data_dir, "UPDATE sessions SET last_seen_at = last_seen_at - 15 * 86400")
    response = call(team, "GET", "/api/v1/account", first)
    assert (response.status_code, error_code(response)) == (401, "session_expired")
    third = call(team, "POST", "/api/v1/auth/signin", None, body).json()["token"]
    signout = call(team, "POST", "/api/v1/auth/signout", third, {"everywhere": True})
    assert signout.json() == {"ended": 1}
    assert call(team, "GET", "/api/v1/account", third).status_code == 401


def test_invites_roles_and_the_last_owner(team: Server, mailbox: Mailbox) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    code = invite(team, mailbox, ann, "bob@example.org")
    wrong_address = {"email": "eve@example.org", "password": PASSWORD, "invite": code}
    response = call(team, "POST", "/api/v1/auth/signup", None, wrong_address)
    assert response.status_code == 400
    bob = sign_up(team, mailbox, "bob@example.org", invite=code)
    again = {"email": "bob2@example.org", "password": PASSWORD, "invite": code}
    assert call(team, "POST", "/api/v1/auth/signup", None, again).status_code == 400  # used
    members = call(team, "GET", "/api/v1/org/members", bob).json()["members"]
    assert {(m["email"], m["role"]) for m in members} == {
        ("ann@example.org", "owner"),
        ("bob@example.org", "member"),
    }
    bob_id = next(m["user_id"] for m in members if m["email"] == "bob@example.org")
    ann_id = next(m["user_id"] for m in members if m["email"] == "ann@example.org")
    refused = call(team, "POST", "/api/v1/org/invites", bob, {"email": "c@example.org"})
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    promote = call(team, "PATCH", f"/api/v1/org/members/{bob_id}", ann, {"role": "admin"})
    assert promote.status_code == 200
    assert call(team, "GET", "/api/v1/org/invites", bob).status_code == 200  # at once
    to_owner = call(team, "PATCH", f"/api/v1/org/members/{bob_id}", bob, {"role": "owner"})
    assert to_owner.status_code == 403  # an admin makes no owners
    last = call(team, "PATCH", f"/api/v1/org/members/{ann_id}", ann, {"role": "member"})
    assert (last.status_code, error_code(last)) == (409, "conflict")
    # An expired invite does not work.
    late = invite(team, mailbox, ann, "cat@example.org")
    query(team.data_dir, "UPDATE invites SET expires_at = 1 WHERE email = 'cat@example.org'")
    body = {"email": "cat@example.org", "password": PASSWORD, "invite": late}
    assert call(team, "POST", "/api/v1/auth/signup", None, body).status_code == 400


def test_removal_closes_the_members_websocket_and_denies_at_once(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(
        team, mailbox, "bob@example.org", invite=invite(team, mailbox, ann, "bob@example.org")
    )
    members = call(team, "GET", "/api/v1/org/members", ann).json()["members"]
    bob_id = next(m["user_id"] for m in members if m["email"] == "bob@example.org")
    with team.client.websocket_connect(
        STREAMS_URL, subprotocols=[SUBPROTOCOL], headers={"Authorization": f"Bearer {bob}"}
    ) as ws:
        assert call(team, "DELETE", f"/api/v1/org/members/{bob_id}", ann).status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4403
    response = call(team, "GET", "/api/v1/projects", bob)
    assert (response.status_code, error_code(response)) == (403, "forbidden")


def test_an_open_connection_ends_when_its_session_expires_and_keeps_a_live_one_in_use(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(
        team, mailbox, "bob@example.org", invite=invite(team, mailbox, ann, "bob@example.org")
    )

    def socket(token: str) -> WebSocketTestSession:
        return team.client.websocket_connect(
            STREAMS_URL, subprotocols=[SUBPROTOCOL], headers=bearer(token)
        )

    with socket(bob) as ws, socket(ann):
        query(team.data_dir, "UPDATE sessions SET last_seen_at = 0")  # idle for long: in use
        query(
            team.data_dir,
            "UPDATE sessions SET expires_at = 1 WHERE user_id = "
            "(SELECT id FROM users WHERE email = 'bob@example.org')",
        )
        portal = team.client.portal
        assert portal is not None
        assert portal.call(team.app.state.connections.sweep, team.app.state.db) == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4401, "session expired")
    assert call(team, "GET", "/api/v1/account", bob).status_code == 401
    # Ann's connection counted as use: her session is alive, though unused for 50 years.
    assert call(team, "GET", "/api/v1/account", ann).status_code == 200


# What each role of an org may do in it (owner, admin, member), beyond reading and writing
# plans, which every role may: (method, path, body) -> the statuses by role.
WITHIN_ORG = [
    ("GET", "/api/v1/org/members", None, {"owner": 200, "admin": 200, "member": 200}),
    ("GET", "/api/v1/org/invites", None, {"owner": 200, "admin": 200, "member": 403}),
    ("GET", "/api/v1/org/audit", None, {"owner": 200, "admin": 200, "member": 403}),
    ("GET", "/api/v1/org/usage", None, {"owner": 200, "admin": 200, "member": 403}),
    # Authorized for the owner only; the wrong name then stops it (nothing is deleted).
    ("DELETE", "/api/v1/org", {"confirm": "not its name"}, {"owner": 400, "admin": 403,
                                                             "member": 403}),
]  # fmt: skip


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
def test_the_authorization_matrix(
    data_dir: Path, mailbox: Mailbox, emulator: Emulator, role: str
) -> None:
    """Each role of org B: denied every REST route, the WebSocket and SSE on org A's ids
    (``not_found``, never ``forbidden``); allowed in B what its role allows, and no more."""
    with running(team_settings(data_dir, mailbox, signup="open")) as team:
        ann = sign_up(team, mailbox, "ann@a.example")
        project, plan = fill(team, ann, emulator, "of-a")
        (stream,) = call(team, "GET", f"/api/v1/plans/{plan}/streams", ann).json()["streams"]
        ids = Ids(project, plan, stream["id"])
        owner_b = sign_up(team, mailbox, "bea@b.example")
        token = owner_b
        if role != "owner":
            code = invite(team, mailbox, owner_b, f"{role}@b.example", role)
            token = sign_up(team, mailbox, f"{role}@b.example", invite=code)
        as_b = replace(team, auth=bearer(token))

        for name, c in CALLS.items():
            if not c.has_ids:
                continue
            response = call(team, c.method, c.url(ids), token, c.body)
            assert (response.status_code, error_code(response)) == (404, "not_found"), name
        sse = call(team, "GET", f"/api/v1/streams/{stream['id']}/events", token)
        assert (sse.status_code, error_code(sse)) == (404, "not_found")
        with as_b.connect() as ws:
            send(ws, Attach(stream_id=stream["id"]))
            assert expect_error(ws).code == "not_found"
            send(ws, Stop(stream_id=stream["id"]))
            assert expect_error(ws).code == "not_found"
            send(ws, as_b.seal(start_message(plan, openai_creds(emulator))))
            assert expect_error(ws).code == "not_found"

        own_project, own_plan = fill(as_b, token, emulator, "of-b")  # read and write: any role
        assert call(team, "GET", f"/api/v1/plans/{own_plan}", token).status_code == 200
        for method, path, body, by_role in WITHIN_ORG:
            response = call(team, method, path, token, body)
            assert response.status_code == by_role[role], (method, path, response.text)
        # And the owner of A still has all of it.
        assert call(team, "GET", f"/api/v1/plans/{plan}", ann).status_code == 200
        assert own_project != project


def test_removal_ends_the_members_sse_follow(
    team: Server, mailbox: Mailbox, emulator: Emulator
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(
        team, mailbox, "bob@example.org", invite=invite(team, mailbox, ann, "bob@example.org")
    )
    _, plan = fill(team, ann, emulator, "sse")
    (stream,) = call(team, "GET", f"/api/v1/plans/{plan}/streams", ann).json()["streams"]
    members = call(team, "GET", "/api/v1/org/members", ann).json()["members"]
    bob_id = next(m["user_id"] for m in members if m["email"] == "bob@example.org")
    # A finished stream's follow ends by itself; a removal must end a live one. Hold one
    # open: the SSE of a running stream.
    emulator.push(Reply(text="slow " * 400, chunk_chars=5, trickle=0.05))
    as_ann = replace(team, auth=bearer(ann))
    with as_ann.connect() as ws:
        started = start_stream(ws, as_ann.seal(start_message(plan, openai_creds(emulator))))
        with team.client.stream(
            "GET", f"/api/v1/streams/{started.stream_id}/events", headers=bearer(bob)
        ) as sse:
            assert sse.status_code == 200
            lines = sse.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            gone = call(team, "DELETE", f"/api/v1/org/members/{bob_id}", ann)
            assert gone.status_code == 200
            rest = list(lines)  # the response ends: no hang until the stream's end
        assert not any('"type":"end"' in line for line in rest)
        send(ws, Stop(stream_id=started.stream_id))
    assert stream["status"] == "finished"
