"""The data page: the export download, deleting your account, and (owners) deleting the org,
with the same outcome as the REST routes, and every refusal shown on the page."""

from __future__ import annotations

import json
import re

import pytest

from tests.server.helpers import Server, query
from tests.server.team import (
    PASSWORD,
    Mailbox,
    bearer,
    call,
    error_code,
    invite,
    me,
    org_rows,
    sign_up,
)
from tests.web.helpers import csrf_of, page_sign_in, post_form

ORG_NAME = "ann's org"  # what sign-up names a new account's org


def test_the_export_downloads_what_the_rest_export_holds_and_is_audited(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    team.auth = bearer(ann)
    team.new_plan(team.new_project("exported project"), "exported plan")
    page_sign_in(team, mailbox, "ann@example.org")
    page = team.client.get("/web/data")
    assert page.status_code == 200
    assert 'href="/web/data/export"' in page.text

    download = team.client.get("/web/data/export")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == 'attachment; filename="plancast-export.json"'
    assert download.headers["cache-control"] == "no-store"
    data = download.json()
    rest = call(team, "GET", "/api/v1/account/export", ann).json()
    assert data["user"]["email"] == "ann@example.org"
    (content,) = data["orgs"].values()
    assert [p["name"] for p in content["plans"]] == ["exported plan"]
    same = {k for k in rest if k not in ("exported_at", "audit")}  # the audit grew by one
    assert {k: data[k] for k in same} == {k: rest[k] for k in same}
    assert PASSWORD not in download.text and "pcs_" not in download.text
    user_id = data["user"]["id"]
    exported = query(
        team.data_dir,
        "SELECT count(*) FROM audit_log WHERE user_id = ? AND action = 'account.exported'",
        user_id,
    )
    assert exported == [(2,)]  # the page's and the REST route's

    team.client.cookies.clear()
    signed_out = team.client.get("/web/data/export", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/web/signin?next=")


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/web/data/delete-account", {"password": PASSWORD}),
        ("/web/data/delete-org", {"confirm": ORG_NAME}),
    ],
)
def test_the_delete_forms_need_the_csrf_token_and_our_origin(
    team: Server, mailbox: Mailbox, path: str, fields: dict[str, str]
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    assert me(team, ann)["orgs"][0]["name"] == ORG_NAME
    page_sign_in(team, mailbox, "ann@example.org")
    token = csrf_of(team.client.get("/web/data").text)
    refused = [
        post_form(team, path, fields),
        post_form(team, path, fields | {"csrf": "0" * 64}),
        post_form(team, path, fields | {"csrf": token}, {}),
        post_form(team, path, fields | {"csrf": token}, {"Origin": "http://evil.example"}),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "That did not work" in response.text
    assert [o["name"] for o in me(team, ann)["orgs"]] == [ORG_NAME]  # nothing was deleted


def test_a_member_deletes_their_account_and_the_last_owner_is_told_why_not(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(team, mailbox, "bob@example.org", invite(team, mailbox, ann, "bob@example.org"))
    bob_id = me(team, bob)["user_id"]

    page_sign_in(team, mailbox, "ann@example.org")
    csrf = csrf_of(team.client.get("/web/data").text)
    conflict = post_form(team, "/web/data/delete-account", {"csrf": csrf, "password": PASSWORD})
    assert conflict.status_code == 409
    assert "last owner" in conflict.text and 'id="delete-account"' in conflict.text
    assert me(team, ann)["orgs"]

    team.client.cookies.clear()
    page_sign_in(team, mailbox, "bob@example.org")
    page = team.client.get("/web/data")
    assert 'id="delete-org"' not in page.text  # a member: no such control
    csrf, typed = csrf_of(page.text), "not the password at all"
    wrong = post_form(team, "/web/data/delete-account", {"csrf": csrf, "password": typed})
    assert wrong.status_code == 403
    assert 'role="alert"' in wrong.text and 'id="delete-account"' in wrong.text
    assert typed not in wrong.text
    assert me(team, bob)["user_id"] == bob_id

    done = post_form(team, "/web/data/delete-account", {"csrf": csrf, "password": PASSWORD})
    assert (done.status_code, done.headers["location"]) == (
        303,
        "/web/signin?done=account_deleted",
    )
    cleared = [c for c in done.headers.get_list("set-cookie") if c.startswith("plancast_session=")]
    assert cleared and "Max-Age=0" in cleared[0]
    signin = team.client.get(done.headers["location"])
    assert "Your account was deleted" in signin.text and 'id="email"' in signin.text
    gone = call(team, "GET", "/api/v1/account", bob)
    assert (gone.status_code, error_code(gone)) == (401, "session_expired")
    assert query(team.data_dir, "SELECT id FROM users WHERE id = ?", bob_id) == []
    members = call(team, "GET", "/api/v1/org/members", ann).json()["members"]
    assert [m["email"] for m in members] == ["ann@example.org"]
    actions = query(team.data_dir, "SELECT action FROM audit_log WHERE user_id = ?", bob_id)
    assert ("account.deleted",) in actions


def test_only_an_owner_deletes_the_org_by_typing_its_name(
    team: Server, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(
        team, mailbox, "bob@example.org", invite(team, mailbox, ann, "bob@example.org", "admin")
    )
    org = me(team, ann)["org_id"]
    team.auth = bearer(ann)
    plan = team.new_plan(team.new_project("doomed"), "doomed plan")
    shredded: list[str] = []
    forget = team.app.state.org_shredded
    monkeypatch.setattr(
        team.app.state, "org_shredded", lambda org_id: (shredded.append(org_id), forget(org_id))
    )

    page_sign_in(team, mailbox, "bob@example.org")  # an admin
    page = team.client.get("/web/data")
    assert 'id="delete-org"' not in page.text and "Delete this org" not in page.text
    refused = post_form(
        team, "/web/data/delete-org", {"csrf": csrf_of(page.text), "confirm": ORG_NAME}
    )
    assert refused.status_code == 403 and "admin role may not" in refused.text
    assert call(team, "GET", f"/api/v1/plans/{plan}", bob).status_code == 200

    team.client.cookies.clear()
    page_sign_in(team, mailbox, "ann@example.org")
    page = team.client.get("/web/data")
    assert 'id="delete-org"' in page.text and "<strong>ann&#39;s org</strong>" in page.text
    csrf = csrf_of(page.text)
    for typed in ("", ORG_NAME.upper(), ORG_NAME + " "):
        wrong = post_form(team, "/web/data/delete-org", {"csrf": csrf, "confirm": typed})
        assert wrong.status_code == 400, typed
        assert "confirm with its name" in wrong.text and 'id="delete-org"' in wrong.text
    assert call(team, "GET", f"/api/v1/plans/{plan}", ann).status_code == 200
    assert shredded == []

    done = post_form(team, "/web/data/delete-org", {"csrf": csrf, "confirm": ORG_NAME})
    assert (done.status_code, done.headers["location"]) == (303, "/web/data?done=org_deleted")
    assert shredded == [org]  # every replica was told to forget its data key
    assert org_rows(team.data_dir, org) == {"audit_log": 1}  # the deletion's own entry
    after = team.client.get(done.headers["location"])
    assert after.status_code == 200
    assert "The org was deleted" in after.text and 'id="no-org"' in after.text
    assert "you are a member of none" in after.text
    assert re.search(r'<form method="post" action="/web/signout">', after.text)
    assert 'id="delete-org"' not in after.text
    for token in (ann, bob):
        response = call(team, "GET", f"/api/v1/plans/{plan}", token)
        assert (response.status_code, error_code(response)) == (403, "forbidden")
    assert team.client.get(f"/web/plans/{plan}/live").status_code == 403
    entry = query(team.data_dir, "SELECT action, detail FROM audit_log WHERE org_id = ?", org)
    assert entry[0][0] == "org.deleted"
    assert json.loads(entry[0][1]) == {"projects": 1, "plans": 1, "members": 2}
