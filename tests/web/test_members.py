"""The members page: what each role sees and may do, with the same rules as the REST routes."""

from __future__ import annotations

import re

from tests.server.helpers import Server
from tests.server.team import Mailbox, invite, me, sign_up
from tests.web.helpers import csrf_of, page_sign_in, post_form


def member_id(page: str, email: str) -> str:
    """The user id in the member row of ``email`` (from its forms' actions)."""
    row = page.split(f'data-email="{email}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(r"/web/members/(usr_[a-z0-9]+)/", row)
    assert found, row
    return found[1]


def test_an_owner_changes_roles_removes_and_keeps_the_last_owner(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(team, mailbox, "bob@example.org", invite(team, mailbox, ann, "bob@example.org"))
    page_sign_in(team, mailbox, "ann@example.org")
    page = team.client.get("/web/members")
    csrf, bob_id = csrf_of(page.text), member_id(page.text, "bob@example.org")

    changed = post_form(team, f"/web/members/{bob_id}/role", {"csrf": csrf, "role": "admin"})
    assert (changed.status_code, changed.headers["location"]) == (303, "/web/members?done=role")
    assert [o["role"] for o in me(team, bob)["orgs"]] == ["admin"]
    page = team.client.get("/web/members?done=role")
    assert "Role changed." in page.text
    bob_row = page.text.split('data-email="bob@example.org"', 1)[1].split("</tr>", 1)[0]
    assert '<option value="admin" selected>' in bob_row

    ann_id = member_id(page.text, "ann@example.org")
    last = post_form(team, f"/web/members/{ann_id}/role", {"csrf": csrf, "role": "member"})
    assert last.status_code == 409
    assert "at least one owner" in last.text and 'id="members"' in last.text

    removed = post_form(team, f"/web/members/{bob_id}/remove", {"csrf": csrf})
    assert removed.status_code == 303
    assert me(team, bob)["orgs"] == []
    assert "bob@example.org" not in team.client.get("/web/members").text


def test_a_member_sees_no_controls_and_may_not_invite(team: Server, mailbox: Mailbox) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    sign_up(team, mailbox, "bob@example.org", invite(team, mailbox, ann, "bob@example.org"))
    page_sign_in(team, mailbox, "bob@example.org")
    page = team.client.get("/web/members")
    assert page.status_code == 200
    assert "ann@example.org" in page.text and "bob@example.org" in page.text
    assert "<select" not in page.text and "Send the invite" not in page.text
    assert ">Remove<" not in page.text and "Leave the org" in page.text  # their own row only

    refused = post_form(
        team,
        "/web/members/invite",
        {"csrf": csrf_of(page.text), "email": "cy@example.org", "role": "member"},
    )
    assert refused.status_code == 403
    assert not any(m["To"] == "cy@example.org" for m in mailbox.messages)


def test_an_admin_invites_and_cancels_but_cannot_make_owners(
    team: Server, mailbox: Mailbox
) -> None:
    ann = sign_up(team, mailbox, "ann@example.org")
    code = invite(team, mailbox, ann, "bob@example.org", role="admin")
    sign_up(team, mailbox, "bob@example.org", code)
    page_sign_in(team, mailbox, "bob@example.org")
    page = team.client.get("/web/members")
    assert '<option value="owner"' not in page.text  # neither to invite nor to give
    ann_row = page.text.split('data-email="ann@example.org"', 1)[1].split("</tr>", 1)[0]
    assert "<select" not in ann_row and ">Remove<" not in ann_row

    csrf = csrf_of(page.text)
    fields = {"csrf": csrf, "email": "cy@example.org"}
    owner = post_form(team, "/web/members/invite", fields | {"role": "owner"})
    assert owner.status_code == 403 and 'id="members"' in owner.text
    sent = post_form(team, "/web/members/invite", fields | {"role": "member"})
    assert sent.status_code == 303
    assert mailbox.code_for("cy@example.org").startswith("pci_")
    page = team.client.get("/web/members")
    found = re.search(r"/web/invites/(inv_[a-z0-9]+)/cancel", page.text)
    assert found
    cancelled = post_form(team, f"/web/invites/{found[1]}/cancel", {"csrf": csrf})
    assert (cancelled.status_code, cancelled.headers["location"]) == (
        303,
        "/web/members?done=cancelled",
    )
    assert "cy@example.org" not in team.client.get("/web/members").text
