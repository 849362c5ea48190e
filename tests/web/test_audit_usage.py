"""The audit log and usage pages: for owners and admins only, with what the REST routes show."""

from __future__ import annotations

import re
import time

import pytest

from tests.server.helpers import Server, query
from tests.server.team import Mailbox, call, invite, me, sign_up
from tests.web.helpers import page_sign_in

DAY_S = 86400
_ROW = re.compile(r'<tr data-id="(\d+)">(.*?)</tr>', re.S)


def nav_links(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Pages">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="(/web/[a-z]*)"', nav)


def audit_rows(html: str) -> list[tuple[int, list[str]]]:
    """(entry id, its cells' text) for each row of the audit table."""
    return [
        (
            int(entry_id),
            [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(r"<td\b[^>]*>(.*?)</td>", body, re.S)
            ],
        )
        for entry_id, body in _ROW.findall(html)
    ]


def org_with_roles(team: Server, mailbox: Mailbox) -> tuple[str, str, str]:
    """Ann owns the org; Bob is its admin, Cy a member. Their CLI tokens."""
    ann = sign_up(team, mailbox, "ann@example.org")
    bob = sign_up(
        team, mailbox, "bob@example.org", invite(team, mailbox, ann, "bob@example.org", "admin")
    )
    cy = sign_up(team, mailbox, "cy@example.org", invite(team, mailbox, ann, "cy@example.org"))
    return ann, bob, cy


def test_members_neither_see_nor_open_the_audit_and_usage_pages(
    team: Server, mailbox: Mailbox
) -> None:
    org_with_roles(team, mailbox)
    page_sign_in(team, mailbox, "cy@example.org")
    home = team.client.get("/web/")
    assert nav_links(home.text) == ["/web/", "/web/members", "/web/sessions", "/web/data"]
    for path in ("/web/audit", "/web/usage", "/web/audit?before=5", "/web/usage?days=7"):
        refused = team.client.get(path)
        assert refused.status_code == 403, path
        assert "That did not work" in refused.text and "member role may not" in refused.text
        assert 'id="audit"' not in refused.text and 'id="by-model"' not in refused.text

    team.client.cookies.clear()
    page_sign_in(team, mailbox, "bob@example.org")
    links = nav_links(team.client.get("/web/").text)
    assert links == [
        "/web/",
        "/web/members",
        "/web/sessions",
        "/web/audit",
        "/web/usage",
        "/web/data",
    ]
    for path in ("/web/audit", "/web/usage"):
        shown = team.client.get(path)
        assert shown.status_code == 200, path
        assert f'<a href="{path}" aria-current="page">' in shown.text


def test_the_audit_page_lists_newest_first_names_members_and_pages_back(
    team: Server, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, _, cy = org_with_roles(team, mailbox)
    cy_id = me(team, cy)["user_id"]
    ann_id = me(team, ann)["user_id"]
    removed = call(team, "DELETE", f"/api/v1/org/members/{cy_id}", ann)
    assert removed.status_code == 200, removed.text
    page_sign_in(team, mailbox, "ann@example.org")
    everything = call(team, "GET", "/api/v1/org/audit?limit=500", ann).json()["entries"]
    assert len(everything) > 6, "too few entries to page through"

    monkeypatch.setattr("plancast.server.web.pages.audit.PAGE_SIZE", 4)
    seen: list[tuple[int, list[str]]] = []
    path: str | None = "/web/audit"
    while path is not None:
        response = team.client.get(path)
        assert response.status_code == 200, response.text
        rows = audit_rows(response.text)
        assert 1 <= len(rows) <= 4
        seen += rows
        older = re.search(r'href="(/web/audit\?before=\d+)" rel="next"', response.text)
        path = older[1] if older else None
        if path:
            assert path == f"/web/audit?before={rows[-1][0]}"
            assert len(rows) == 4
    assert [entry_id for entry_id, _ in seen] == [e["id"] for e in everything]

    by_id = {e["id"]: e for e in everything}
    for entry_id, (when, action, actor, target, detail) in seen:
        entry = by_id[entry_id]
        assert when == time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry["created_at"]))
        assert action == entry["action"]
        assert target == (entry["target"] or "—")
        for key, value in entry["detail"].items():
            assert f"{key}: {value}" in detail
        if entry["user_id"] == ann_id:
            assert actor == "ann@example.org"
        elif entry["user_id"] == cy_id:  # no longer a member: an id, never an old address
            assert actor == cy_id
    actions = {(e["action"], e["user_id"]) for e in everything}
    assert ("invite.accepted", cy_id) in actions  # so the removed member's id was checked
    assert ("member.removed", ann_id) in actions
    page = team.client.get("/web/audit").text
    assert "cy@example.org" not in page

    for bad in ("x", "-1", "1.5"):
        refused = team.client.get(f"/web/audit?before={bad}")
        assert refused.status_code == 400 and "whole number" in refused.text


def test_the_usage_page_sums_by_model_and_day_over_the_chosen_days(
    team: Server, mailbox: Mailbox
) -> None:
    ann, bob, _ = org_with_roles(team, mailbox)
    org = me(team, ann)["org_id"]
    today = int(time.time()) // DAY_S * DAY_S
    rows = [  # model, day offset, input, output
        ("openai/gpt-4.1", 0, 1200, 10),
        ("openai/gpt-4.1", 0, 300, 20),
        ("anthropic/claude", 0, 1000, 100),
        ("openai/gpt-4.1", -1, 300, 30),
        ("openai/gpt-4.1", -40, 5000, 500),  # beyond 30 days, within 90
    ]
    for n, (model, offset, tokens_in, tokens_out) in enumerate(rows):
        query(
            team.data_dir,
            "INSERT INTO usage (id, org_id, plan_id, stream_id, model, role, input_tokens, "
            "output_tokens, first_token_ms, duration_ms, created_at) "
            "VALUES (?, ?, 'pl_x', NULL, ?, 'planner', ?, ?, 5, 50, ?)",
            f"use_{n}",
            org,
            model,
            tokens_in,
            tokens_out,
            float(today + offset * DAY_S + 1),
        )
    day = time.strftime("%Y-%m-%d", time.gmtime(today))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(today - DAY_S))
    page_sign_in(team, mailbox, "bob@example.org")  # an admin

    html = team.client.get("/web/usage").text
    by_model = html.split('id="by-model"', 1)[1].split("</table>", 1)[0]
    assert cells(by_model, "anthropic/claude") == ["1", "1,000", "100"]
    assert cells(by_model, "openai/gpt-4.1") == ["3", "1,800", "60"]
    assert cells(by_model, "total") == ["4", "2,800", "160"]
    by_day = html.split('id="by-day"', 1)[1].split("</table>", 1)[0]
    days = re.findall(r'<tbody data-day="([0-9-]+)">', by_day)
    assert days == [yesterday, day]
    today_rows = by_day.split(f'data-day="{day}"', 1)[1].split("</tbody>", 1)[0]
    assert cells(today_rows, "all models") == ["3", "2,500", "130"]
    assert cells(today_rows, "openai/gpt-4.1") == ["2", "1,500", "30"]
    assert '<a href="/web/usage?days=30" aria-current="page">' in html
    assert "<script" not in html and "<canvas" not in html and "<svg" not in html

    wide = team.client.get("/web/usage?days=90").text
    assert cells(wide.split('id="by-model"', 1)[1], "total") == ["5", "7,800", "660"]
    assert '<a href="/web/usage?days=90" aria-current="page">' in wide
    week = team.client.get("/web/usage?days=7").text
    assert cells(week.split('id="by-model"', 1)[1], "total") == ["4", "2,800", "160"]
    assert call(team, "GET", "/api/v1/org/usage?days=7", bob).json()["total"]["calls"] == 4
    for bad in ("0", "367", "x"):
        refused = team.client.get(f"/web/usage?days={bad}")
        assert refused.status_code == 400, bad


def cells(html: str, key: str) -> list[str]:
    """The number cells of the row for ``key`` (a model, ``total`` or ``all models``)."""
    if key == "all models":
        row = html.split("<td>all models</td>", 1)[1].split("</tr>", 1)[0]
    else:
        row = html.split(f'data-model="{key}">', 1)[1].split("</tr>", 1)[0]
    return re.findall(r'<td class="number">([^<]*)</td>', row)
