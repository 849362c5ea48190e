"""The history and plan-lifecycle routes: versions, rewind and undo, branches, rename, archive,
delete; their errors (unknown versions, another org's plan, a busy branch, bad branch names) and
their idempotent retries. The error shape and the token on every route are in test_rest.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    check_sequence,
    openai_creds,
    query,
    start_message,
)
from tests.server.test_rest import assert_error


def execute(server: Server, sql: str, *params: Any) -> None:
    """Write to the app's database behind its back, as another process would."""
    query(server.data_dir, sql, *params)


def rows(server: Server, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return query(server.data_dir, sql, *params)


def run_on(server: Server, plan_id: str, branch: str, stream_id: str = "st_busy") -> None:
    """A stream row running on the branch (the one-per-branch index sees it like any other)."""
    execute(
        server,
        "INSERT INTO streams (id, org_id, plan_id, branch, mode, model, request_id, status,"
        " last_seq, started_at) VALUES (?, 'org_local', ?, ?, 'tell', 'openai/gpt-4.1', ?,"
        " 'running', 0, 0)",
        stream_id,
        plan_id,
        branch,
        f"req_{stream_id}",
    )


def end(server: Server, stream_id: str = "st_busy") -> None:
    execute(server, "UPDATE streams SET status = 'finished' WHERE id = ?", stream_id)


def load(server: Server, plan_id: str, name: str, branch: str = "main") -> dict[str, Any]:
    item = {"kind": "note", "name": name, "content": name}
    url = f"/api/v1/plans/{plan_id}/context?branch={branch}"
    return dict(server.ok("POST", url, {"items": [item]}))


def versions(server: Server, plan_id: str, query: str = "") -> dict[str, Any]:
    return dict(server.ok("GET", f"/api/v1/plans/{plan_id}/versions{query}"))


def numbers(server: Server, plan_id: str, query: str = "") -> list[int]:
    return [v["number"] for v in versions(server, plan_id, query)["versions"]]


# -- versions, rewind, undo -----------------------------------------------------------------


def test_versions_list_the_branch_chain_or_every_version(server: Server, plan_id: str) -> None:
    for name in ("a", "b", "c"):
        load(server, plan_id, name)  # versions 2, 3, 4
    moved = server.ok("POST", f"/api/v1/plans/{plan_id}/rewind", {"version": 2})
    assert (moved["kind"], moved["from"]["number"], moved["to"]["number"]) == ("rewind", 4, 2)
    assert moved["branch"] == "main" and moved["id"].startswith("mv_")
    load(server, plan_id, "d")  # version 5, on top of 2
    listed = versions(server, plan_id)
    assert [v["number"] for v in listed["versions"]] == [1, 2, 5]
    assert listed["branch"] == "main" and listed["head"]["number"] == 5
    assert listed["versions"][2]["parent_id"] == listed["versions"][1]["id"]
    every = versions(server, plan_id, "?all=1")
    assert [v["number"] for v in every["versions"]] == [1, 2, 3, 4, 5]  # nothing was lost
    assert [(b["name"], b["head_number"], b["stream_id"]) for b in every["branches"]] == [
        ("main", 5, None)
    ]


def test_rewind_by_id_and_undo_back(server: Server, plan_id: str) -> None:
    load(server, plan_id, "a")
    first = versions(server, plan_id)["versions"][0]
    url = f"/api/v1/plans/{plan_id}/rewind"
    assert server.ok("POST", url, {"version": first["id"]})["to"]["id"] == first["id"]
    back = server.ok("POST", f"{url}/undo", {})
    assert (back["kind"], back["from"]["number"], back["to"]["number"]) == ("undo", 1, 2)
    assert versions(server, plan_id)["head"]["number"] == 2
    assert_error(server.post(f"{url}/undo", {}), 400, "invalid_request")  # nothing left


def test_rewind_errors(server: Server, plan_id: str) -> None:
    url = f"/api/v1/plans/{plan_id}/rewind"
    load(server, plan_id, "a")
    for version in (9, "9", "ver_unknown", 0):
        assert_error(server.post(url, {"version": version}), 404, "not_found")
    for body in ({}, {"version": None}, {"version": True}, {"version": -1}, {"version": " "}):
        assert_error(server.post(url, body), 400, "invalid_request")
    message = assert_error(server.post(url, {"version": 2}), 400, "invalid_request")
    assert "already at version 2" in message
    assert_error(server.post(f"{url}?branch=nope", {"version": 1}), 404, "not_found")
    assert numbers(server, plan_id, "?all=1") == [1, 2]


def test_an_undo_after_new_versions_says_nothing_is_lost(server: Server, plan_id: str) -> None:
    load(server, plan_id, "a")
    load(server, plan_id, "b")
    server.ok("POST", f"/api/v1/plans/{plan_id}/rewind", {"version": 1})
    load(server, plan_id, "c")
    message = assert_error(server.post(f"/api/v1/plans/{plan_id}/rewind/undo", {}), 409, "conflict")
    assert "plancast rewind 3" in message and "Nothing is lost" in message


def test_a_rewind_names_the_applied_files_to_revert(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=40))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    assert check_sequence(events).status == "finished"
    plan = f"/api/v1/plans/{plan_id}"
    pending = server.ok("GET", f"{plan}/changes")["changes"]
    before_apply = versions(server, plan_id)["head"]["number"]
    server.ok("POST", f"{plan}/changes/apply", {"paths": ["src/app.py"]})
    moved = server.ok("POST", f"{plan}/rewind", {"version": before_apply})
    assert moved["revert"] == [{"id": pending[0]["id"], "path": "src/app.py"}]
    assert moved["reapply"] == []
    assert [c["status"] for c in server.ok("GET", f"{plan}/changes?status=all")["changes"]] == [
        "pending",
        "pending",
    ]
    back = server.ok("POST", f"{plan}/rewind/undo", {})
    assert (back["revert"], back["reapply"]) == ([], moved["revert"])


# -- branches -------------------------------------------------------------------------------


def test_branches_are_created_listed_and_deleted(server: Server, plan_id: str) -> None:
    url = f"/api/v1/plans/{plan_id}/branches"
    load(server, plan_id, "a")
    response = server.post(url, {"name": "feature"})
    assert response.status_code == 201
    made = response.json()
    assert (made["name"], made["head_number"], made["stream_id"]) == ("feature", 2, None)
    at_one = server.post(f"{url}?branch=feature", {"name": "old", "version": 1}).json()
    assert at_one["head_number"] == 1
    load(server, plan_id, "only-on-feature", branch="feature")  # version 3
    listed = server.ok("GET", url)["branches"]
    assert [(b["name"], b["head_number"]) for b in listed] == [
        ("main", 2),
        ("feature", 3),
        ("old", 1),
    ]
    assert server.ok("GET", f"/api/v1/plans/{plan_id}")["branches"] == ["main", "feature", "old"]
    # What a branch holds is its own.
    names = [i["name"] for i in server.ok("GET", f"/api/v1/plans/{plan_id}/context")["items"]]
    assert names == ["a"]
    on_feature = server.ok("GET", f"/api/v1/plans/{plan_id}/context?branch=feature")["items"]
    assert [i["name"] for i in on_feature] == ["a", "only-on-feature"]

    deleted = server.client.delete(f"{url}/feature", headers=server.auth)
    assert deleted.status_code == 200 and deleted.json()["deleted"]["head_number"] == 3
    assert [b["name"] for b in server.ok("GET", url)["branches"]] == ["main", "old"]
    assert numbers(server, plan_id, "?all=1") == [1, 2, 3]  # its versions stay


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "é", "x" * 65, "a.b"])
def test_bad_branch_names_are_refused(server: Server, plan_id: str, name: str) -> None:
    url = f"/api/v1/plans/{plan_id}/branches"
    message = assert_error(server.post(url, {"name": name}), 400, "invalid_request")
    assert "letters, digits" in message
    params = {"branch": name}
    for response in (
        server.get(f"/api/v1/plans/{plan_id}/context", params=params),
        server.get(f"/api/v1/plans/{plan_id}/versions", params=params),
        server.post(f"/api/v1/plans/{plan_id}/rewind", {"version": 1}, params=params),
    ):
        assert_error(response, 400, "invalid_request")
    assert [b["name"] for b in server.ok("GET", url)["branches"]] == ["main"]


def test_branch_errors(server: Server, plan_id: str) -> None:
    url = f"/api/v1/plans/{plan_id}/branches"
    server.ok("POST", url, {"name": "feature"})
    assert_error(server.post(url, {"name": "feature"}), 409, "conflict")
    assert_error(server.post(url, {"name": "main"}), 409, "conflict")
    assert_error(server.post(url, {"name": "x", "version": 7}), 404, "not_found")
    assert_error(server.post(f"{url}?branch=nope", {"name": "y"}), 404, "not_found")
    assert_error(server.post(url, {}), 400, "invalid_request")
    main = assert_error(
        server.client.delete(f"{url}/main", headers=server.auth), 400, "invalid_request"
    )
    assert "cannot be deleted" in main
    assert_error(server.client.delete(f"{url}/nope", headers=server.auth), 404, "not_found")
    assert_error(server.client.delete(f"{url}/-x", headers=server.auth), 400, "invalid_request")


def test_a_busy_branch_is_neither_moved_nor_deleted(server: Server, plan_id: str) -> None:
    plan = f"/api/v1/plans/{plan_id}"
    load(server, plan_id, "a")
    server.ok("POST", f"{plan}/branches", {"name": "feature"})
    run_on(server, plan_id, "feature")
    busy = [
        server.post(f"{plan}/rewind?branch=feature", {"version": 1}),
        server.post(f"{plan}/rewind/undo?branch=feature", {}),
        server.client.delete(f"{plan}/branches/feature", headers=server.auth),
        server.client.delete(plan, headers=server.auth),
    ]
    for response in busy:
        assert "st_busy" in assert_error(response, 409, "busy")
    listed = {b["name"]: b["stream_id"] for b in server.ok("GET", f"{plan}/branches")["branches"]}
    assert listed == {"main": None, "feature": "st_busy"}
    # Another branch of the plan is free.
    assert server.ok("POST", f"{plan}/rewind", {"version": 1})["to"]["number"] == 1
    # The plan's streams, and one branch's.
    assert [s["id"] for s in server.ok("GET", f"{plan}/streams")["streams"]] == ["st_busy"]
    assert server.ok("GET", f"{plan}/streams?branch=main")["streams"] == []
    end(server)
    assert server.ok("POST", f"{plan}/rewind?branch=feature", {"version": 1})["to"]["number"] == 1


# -- the plan's lifecycle -------------------------------------------------------------------


def test_rename_archive_unarchive(server: Server) -> None:
    project_id = server.new_project()
    first = server.new_plan(project_id)
    second = server.new_plan(project_id, "taken")
    plan = f"/api/v1/plans/{first}"
    renamed = server.ok("POST", f"{plan}/rename", {"name": " checkout flow "})
    assert renamed["name"] == "checkout flow"
    assert rows(server, "SELECT name_source FROM plans WHERE id = ?", first) == [("user",)]
    assert_error(server.post(f"{plan}/rename", {"name": "taken"}), 409, "conflict")
    assert_error(server.post(f"{plan}/rename", {"name": ""}), 400, "invalid_request")
    assert_error(server.post(f"{plan}/rename", {}), 400, "invalid_request")

    listing = f"/api/v1/projects/{project_id}/plans"
    archived = server.ok("POST", f"{plan}/archive", {})
    assert archived["archived_at"] is not None
    assert [p["id"] for p in server.ok("GET", listing)["plans"]] == [second]
    assert [p["id"] for p in server.ok("GET", f"{listing}?archived=1")["plans"]] == [first, second]
    assert server.ok("GET", plan)["name"] == "checkout flow"  # still readable
    load(server, first, "still writable")
    assert server.ok("POST", f"{plan}/unarchive", {})["archived_at"] is None
    assert [p["id"] for p in server.ok("GET", listing)["plans"]] == [first, second]


def test_delete_plan_removes_it_and_its_stored_responses(server: Server, plan_id: str) -> None:
    plan = f"/api/v1/plans/{plan_id}"
    server.post(f"{plan}/context", {"items": [{"kind": "note", "name": "n", "content": "secret"}]},
                headers={"Idempotency-Key": "load-before-delete"})  # fmt: skip
    other = server.new_plan()
    server.post(f"/api/v1/plans/{other}/branches", {"name": "kept"},
                headers={"Idempotency-Key": "other-plan-key"})  # fmt: skip
    key = {"Idempotency-Key": "delete-plan-key"}
    first = server.client.delete(plan, headers=server.auth | key)
    assert first.status_code == 200 and first.json()["deleted"]["id"] == plan_id
    retry = server.client.delete(plan, headers=server.auth | key)  # a retry gets the answer
    assert (retry.status_code, retry.json()) == (200, first.json())
    assert_error(server.get(plan), 404, "not_found")
    assert_error(server.client.delete(plan, headers=server.auth), 404, "not_found")
    stored = {k for (k,) in rows(server, "SELECT key FROM idempotency_keys")}
    assert "load-before-delete" not in stored  # it held the plan's content
    assert {"other-plan-key", "delete-plan-key"} <= stored
    for table in ("versions", "branches", "context_items", "head_moves", "streams"):
        assert rows(server, f"SELECT count(*) FROM {table} WHERE plan_id = ?", plan_id) == [(0,)]
    assert server.ok("GET", f"/api/v1/plans/{other}")["branches"] == ["main", "kept"]


# -- another org's plan, and retries --------------------------------------------------------


def _calls(plan: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"{plan}/versions", None),
        ("GET", f"{plan}/versions?all=1", None),
        ("POST", f"{plan}/rewind", {"version": 1}),
        ("POST", f"{plan}/rewind/undo", {}),
        ("GET", f"{plan}/branches", None),
        ("POST", f"{plan}/branches", {"name": "mine"}),
        ("DELETE", f"{plan}/branches/feature", None),
        ("POST", f"{plan}/rename", {"name": "mine"}),
        ("POST", f"{plan}/archive", {}),
        ("POST", f"{plan}/unarchive", {}),
        ("DELETE", plan, None),
    ]


def test_another_orgs_plan_is_not_found_on_every_route(server: Server, plan_id: str) -> None:
    load(server, plan_id, "a")
    server.ok("POST", f"/api/v1/plans/{plan_id}/branches", {"name": "feature"})
    execute(server, "INSERT INTO orgs (id, name, created_at) VALUES ('org_other', 'o', 0)")
    for table in ("plans", "versions", "branches", "context_items"):
        column = "id" if table == "plans" else "plan_id"
        execute(server, f"UPDATE {table} SET org_id = 'org_other' WHERE {column} = ?", plan_id)
    for method, url, body in _calls(f"/api/v1/plans/{plan_id}"):
        response = server.client.request(method, url, json=body, headers=server.auth)
        message = assert_error(response, 404, "not_found")
        assert "forbidden" not in message.lower()
    # Nothing moved: the plan is whole in its own org.
    assert rows(server, "SELECT count(*) FROM versions WHERE plan_id = ?", plan_id) == [(2,)]
    assert rows(server, "SELECT count(*) FROM head_moves") == [(0,)]
    assert rows(server, "SELECT name FROM branches WHERE plan_id = ? ORDER BY name", plan_id) == [
        ("feature",),
        ("main",),
    ]


def _twice(server: Server, method: str, url: str, body: Any, key: str) -> httpx.Response:
    headers = server.auth | {"Idempotency-Key": key}
    first = server.client.request(method, url, json=body, headers=headers)
    again = server.client.request(method, url, json=body, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    return first


def test_retries_with_the_same_key_are_applied_once(server: Server, plan_id: str) -> None:
    plan = f"/api/v1/plans/{plan_id}"
    load(server, plan_id, "a")
    load(server, plan_id, "b")
    assert (
        _twice(server, "POST", f"{plan}/rewind", {"version": 1}, "rewind-once-1").status_code == 200
    )
    assert rows(server, "SELECT kind FROM head_moves WHERE plan_id = ?", plan_id) == [("rewind",)]
    assert _twice(server, "POST", f"{plan}/rewind/undo", {}, "undo-once-01").status_code == 200
    assert versions(server, plan_id)["head"]["number"] == 3  # undone once, not refused twice
    made = _twice(server, "POST", f"{plan}/branches", {"name": "feature"}, "branch-once-1")
    assert made.status_code == 201
    gone = _twice(server, "DELETE", f"{plan}/branches/feature", None, "unbranch-once")
    assert gone.status_code == 200
    assert (
        _twice(server, "POST", f"{plan}/rename", {"name": "n"}, "rename-once-1").status_code == 200
    )
    assert _twice(server, "POST", f"{plan}/archive", {}, "archive-once-1").status_code == 200
    assert rows(server, "SELECT kind FROM head_moves WHERE plan_id = ?", plan_id) == [
        ("rewind",),
        ("undo",),
    ]
