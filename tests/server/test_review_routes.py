"""``POST /api/v1/plans/{plan_id}/changes/reject-hunks``: part of a file's changes dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import changes, plans, projects, review, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.errors import Conflict
from plancast.server.store.schema import orgs
from plancast.shared import EditFile, FileOp, WriteFile
from tests.server.helpers import Server, load_settings, query, running

OTHER_ORG = "org_other"
README = "intro\nold line\nmiddle\nlast line\n"
KEPT = "intro\nnew line\nmiddle\nlast line\n"  # the client kept the first hunk only


def url(plan_id: str) -> str:
    return f"/api/v1/plans/{plan_id}/changes/reject-hunks"


def seed(
    server: Server,
    plan_id: str,
    *ops: FileOp,
    stream_id: str | None = "st_seeded",
    org_id: str = LOCAL_ORG_ID,
) -> list[str]:
    """Pending changes as a reply leaves them: rows, then a version that lists them."""

    async def go() -> list[str]:
        async with server.app.state.db.begin() as conn:
            ids = await changes.insert_changes(conn, org_id, plan_id, stream_id, ops)
            await versions.commit(
                conn,
                org_id,
                plan_id,
                "main",
                "reply",
                "seeded",
                lambda s: replace(s, changes=s.changes + tuple((i, "pending") for i in ids)),
            )
        return ids

    portal = server.client.portal
    assert portal is not None
    return portal.call(go)


def other_org_plan(server: Server) -> str:
    async def go() -> str:
        async with server.app.state.db.begin() as conn:
            await conn.execute(orgs.insert().values(id=OTHER_ORG, name="other", created_at=0.0))
            project = await projects.create_project(conn, OTHER_ORG, "theirs")
            return (await plans.create_plan(conn, OTHER_ORG, project.id, None)).id

    portal = server.client.portal
    assert portal is not None
    return portal.call(go)


def versions_of(server: Server, plan_id: str) -> list[dict[str, Any]]:
    return list(server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"])


def edits(plan_id: str, server: Server) -> list[str]:
    """Two edits of README.md around a new file: the ids, in reply order."""
    return seed(
        server,
        plan_id,
        EditFile("README.md", "old line\n", "new line\n"),
        WriteFile("src/app.py", "x = 1\n"),
        EditFile("README.md", "last line\n", "final line\n"),
    )


def test_the_changes_named_are_rejected_and_one_write_of_the_kept_text_added(
    server: Server, plan_id: str
) -> None:
    first, app, second = edits(plan_id, server)
    before = versions_of(server, plan_id)
    body = {"path": "README.md", "ids": [first, second], "content": KEPT}
    done = server.ok("POST", url(plan_id), body)

    assert done["rejected"] == [
        {"id": first, "path": "README.md"},
        {"id": second, "path": "README.md"},
    ]
    added = done["added"]
    assert added["path"] == "README.md" and added["status"] == "pending"
    assert added["id"] not in (first, app, second)
    # One new version, of kind reject, that names the file.
    after = versions_of(server, plan_id)
    assert len(after) == len(before) + 1
    assert (after[-1]["kind"], after[-1]["number"]) == ("reject", done["version"])
    assert "README.md" in after[-1]["description"]
    # The new change takes the first one's place, keeps their stream, and writes the text.
    pending = server.changes(plan_id)
    assert [(c["id"], c["path"]) for c in pending] == [
        (added["id"], "README.md"),
        (app, "src/app.py"),
    ]
    assert pending[0]["op"] == {"op": "write", "path": "README.md", "content": KEPT}
    assert pending[0]["stream_id"] == "st_seeded"
    rejected = server.changes(plan_id, status="rejected")
    assert sorted(c["id"] for c in rejected) == sorted([first, second])


def test_the_response_carries_no_file_text(server: Server, plan_id: str) -> None:
    # A retried request is answered from the idempotency store: keep the file out of it.
    first, _, second = edits(plan_id, server)
    key = {"Idempotency-Key": "reject-hunks-1"}
    body = {"path": "README.md", "ids": [first, second], "content": "SECRET-ISH TEXT\n"}
    response = server.post(url(plan_id), body, headers=key)
    assert response.status_code == 200, response.text
    assert "SECRET-ISH" not in response.text
    stored = query(server.data_dir, "SELECT body FROM idempotency_keys")
    assert stored and all("SECRET-ISH" not in str(row[0]) for row in stored)


def test_a_retry_with_the_same_key_is_applied_once(server: Server, plan_id: str) -> None:
    first, _, second = edits(plan_id, server)
    before = len(versions_of(server, plan_id))
    key = {"Idempotency-Key": "reject-hunks-2"}
    body = {"path": "README.md", "ids": [first, second], "content": KEPT}
    one = server.post(url(plan_id), body, headers=key)
    two = server.post(url(plan_id), body, headers=key)
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json()
    assert len(versions_of(server, plan_id)) == before + 1
    assert [c["path"] for c in server.changes(plan_id)] == ["README.md", "src/app.py"]


def test_a_change_keeps_no_stream_when_the_ones_it_replaces_came_from_several(
    server: Server, plan_id: str
) -> None:
    (one,) = seed(server, plan_id, EditFile("a.py", "a\n", "b\n"), stream_id="st_one")
    (two,) = seed(server, plan_id, EditFile("a.py", "c\n", "d\n"), stream_id="st_two")
    server.ok("POST", url(plan_id), {"path": "a.py", "ids": [one, two], "content": "b\nc\n"})
    (pending,) = server.changes(plan_id)
    assert pending["stream_id"] is None


def test_the_branch_is_honoured(server: Server, plan_id: str) -> None:
    first, _, second = edits(plan_id, server)
    body = {"path": "README.md", "ids": [first, second], "content": KEPT}
    response = server.post(url(plan_id) + "?branch=elsewhere", body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert len(server.changes(plan_id)) == 3  # main is untouched


def test_another_orgs_plan_is_not_found_and_untouched(server: Server) -> None:
    theirs = other_org_plan(server)
    (change,) = seed(server, theirs, WriteFile("a.py", "x\n"), org_id=OTHER_ORG)
    response = server.post(url(theirs), {"path": "a.py", "ids": [change], "content": ""})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    statuses = query(server.data_dir, "SELECT kind FROM versions WHERE plan_id = ?", theirs)
    assert [kind for (kind,) in statuses] == ["create", "reply"]


def test_another_orgs_change_cannot_be_named_from_my_plan(server: Server, plan_id: str) -> None:
    theirs = other_org_plan(server)
    (foreign,) = seed(server, theirs, WriteFile("a.py", "x\n"), org_id=OTHER_ORG)
    (mine,) = seed(server, plan_id, WriteFile("a.py", "y\n"))
    body = {"path": "a.py", "ids": [mine, foreign], "content": ""}
    response = server.post(url(plan_id), body)
    assert response.status_code == 400, response.text
    assert foreign in response.json()["error"]["message"]
    assert [c["id"] for c in server.changes(plan_id)] == [mine]


def invalid_bodies(ids: Sequence[str]) -> list[tuple[dict[str, Any], str]]:
    first, app, second = ids
    return [
        ({"path": "README.md", "ids": [], "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "ids": first, "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "ids": [first, 5], "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "ids": [first]}, "invalid_request"),
        ({"path": "README.md", "ids": [first], "content": 5}, "invalid_request"),
        ({"ids": [first], "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "ids": [first, app], "content": KEPT}, "invalid_request"),
        ({"path": "README.md", "ids": [first, "chg_nope"], "content": KEPT}, "invalid_request"),
        ({"path": "src/app.py", "ids": [first], "content": KEPT}, "invalid_request"),
        ({"path": "../README.md", "ids": [first], "content": KEPT}, "unsafe_path"),
        ({"path": ".git/config", "ids": [first], "content": KEPT}, "unsafe_path"),
    ]


def test_invalid_requests_change_nothing(server: Server, plan_id: str) -> None:
    ids = edits(plan_id, server)
    before = versions_of(server, plan_id)
    for body, code in invalid_bodies(ids):
        response = server.post(url(plan_id), body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == code, body
    assert versions_of(server, plan_id) == before
    assert [c["id"] for c in server.changes(plan_id)] == ids


def test_changes_no_longer_pending_are_refused(server: Server, plan_id: str) -> None:
    first, _, second = edits(plan_id, server)
    server.ok("POST", f"/api/v1/plans/{plan_id}/changes/apply", {"ids": [second]})
    response = server.post(
        url(plan_id), {"path": "README.md", "ids": [first, second], "content": ""}
    )
    assert response.status_code == 400
    assert second in response.json()["error"]["message"]
    assert first in [c["id"] for c in server.changes(plan_id)]


@pytest.fixture
def small_server(data_dir: Path) -> Iterator[Server]:
    with running(load_settings(data_dir, max_request_bytes=4096)) as srv:
        yield srv


def test_the_content_is_bounded_by_the_request_limit(small_server: Server) -> None:
    plan_id = small_server.new_plan()
    first, _, second = edits(plan_id, small_server)
    before = versions_of(small_server, plan_id)
    body = {"path": "README.md", "ids": [first, second], "content": "x" * 5000}
    response = small_server.post(url(plan_id), body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "message_too_large"
    assert versions_of(small_server, plan_id) == before
    # Streamed without a declared length, it is refused while it is read.
    data = json.dumps(body).encode()
    streamed = small_server.client.post(
        url(plan_id),
        content=iter([data[i : i + 512] for i in range(0, len(data), 512)]),
        headers=small_server.auth,
    )
    assert streamed.status_code == 413
    just_under = body | {"content": "x" * 3000}
    assert small_server.post(url(plan_id), just_under).status_code == 200


async def test_a_change_moved_by_another_writer_meanwhile_is_a_conflict(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "demo")
        plan_id = (await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)).id
        ops = [EditFile("a.py", "a\n", "b\n"), EditFile("a.py", "c\n", "d\n")]
        ids = await changes.insert_changes(conn, LOCAL_ORG_ID, plan_id, None, ops)
        await versions.commit(
            conn,
            LOCAL_ORG_ID,
            plan_id,
            "main",
            "reply",
            "seeded",
            lambda s: replace(s, changes=tuple((i, "pending") for i in ids)),
        )
        real_commit = versions.commit

        async def racing(*args: Any) -> versions.Version:
            # Between the check and the commit, another request applies one of them.
            monkeypatch.setattr(versions, "commit", real_commit)
            await changes.set_status(conn, LOCAL_ORG_ID, plan_id, "main", "applied", ids=ids[1:])
            return await real_commit(*args)

        monkeypatch.setattr(versions, "commit", racing)
        with pytest.raises(Conflict, match=ids[1]):
            await review.reject_hunks(conn, LOCAL_ORG_ID, plan_id, "main", "a.py", ids, "x\n")
        monkeypatch.undo()
        pending = await changes.list_changes(conn, LOCAL_ORG_ID, plan_id, "main")
        assert [c.id for c in pending] == ids[:1]
