"""Team mode: accounts, codes by real SMTP, sessions, orgs, roles and invites, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect

from plancast.shared import SUBPROTOCOL
from tests.server.helpers import STREAMS_URL, Server, query, running
from tests.server.team import (
    PASSWORD,
    Mailbox,
    call,
    error_code,
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


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
def test_every_route_denies_another_orgs_resources(
    data_dir: Path, mailbox: Mailbox, role: str
) -> None:
    """The authorization matrix across orgs: ids of org A, asked for by each role of org B."""
    with running(team_settings(data_dir, mailbox, signup="open")) as team:
        ann = sign_up(team, mailbox, "ann@a.example")
        project = call(team, "POST", "/api/v1/projects", ann, {"name": "a"}).json()["id"]
        plan = call(team, "POST", f"/api/v1/projects/{project}/plans", ann, {}).json()["id"]
        ids = Ids(project, plan, "st_unknown")
        owner_b = sign_up(team, mailbox, "bea@b.example")
        token = owner_b
        if role != "owner":
            code = invite(team, mailbox, owner_b, f"{role}@b.example", role)
            token = sign_up(team, mailbox, f"{role}@b.example", invite=code)
        for name, c in CALLS.items():
            if not c.has_ids or "{stream_id}" in c.path:
                continue
            response = call(team, c.method, c.url(ids), token, c.body)
            assert (response.status_code, error_code(response)) == (404, "not_found"), name
        # And the owner of A still has all of it.
        assert call(team, "GET", f"/api/v1/plans/{plan}", ann).status_code == 200
