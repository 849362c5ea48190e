"""The REST routes: authentication, happy paths, and one error shape on every route."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from starlette.websockets import WebSocketDisconnect

from plancast.server.config import Settings
from plancast.server.errors import HTTP_STATUS
from plancast.server.web import rest
from plancast.shared import SEAL_SUITE, SUBPROTOCOL, ErrorCode
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    STREAMS_URL,
    Server,
    check_sequence,
    load_settings,
    openai_creds,
    query,
    running,
    start_message,
    wait_until,
)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The one error shape: ``{"error": {"code", "message"}}`` with the code's status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip()
    return str(message)


@dataclass(frozen=True)
class Ids:
    project_id: str
    plan_id: str
    stream_id: str


@dataclass(frozen=True)
class Call:
    """One route, called with a body that is valid for it."""

    method: str
    path: str
    body: dict[str, Any] | None = None

    def url(self, ids: Ids) -> str:
        return self.path.format(
            project_id=ids.project_id, plan_id=ids.plan_id, stream_id=ids.stream_id, name="feature"
        )

    @property
    def has_ids(self) -> bool:
        return "{" in self.path


CALLS: dict[str, Call] = {
    "list_projects": Call("GET", "/api/v1/projects"),
    "create_project": Call("POST", "/api/v1/projects", {"name": "another"}),
    "get_project": Call("GET", "/api/v1/projects/{project_id}"),
    "list_plans": Call("GET", "/api/v1/projects/{project_id}/plans"),
    "list_project_streams": Call("GET", "/api/v1/projects/{project_id}/streams"),
    "create_plan": Call("POST", "/api/v1/projects/{project_id}/plans", {"name": "second"}),
    "get_plan": Call("GET", "/api/v1/plans/{plan_id}"),
    "get_context": Call("GET", "/api/v1/plans/{plan_id}/context"),
    "load_context": Call(
        "POST",
        "/api/v1/plans/{plan_id}/context",
        {"items": [{"kind": "file", "name": "src/x.py", "content": "x = 1\n"}]},
    ),
    "remove_context": Call("POST", "/api/v1/plans/{plan_id}/context/remove", {"all": True}),
    "get_convo": Call("GET", "/api/v1/plans/{plan_id}/convo"),
    "get_changes": Call("GET", "/api/v1/plans/{plan_id}/changes"),
    "apply_changes": Call("POST", "/api/v1/plans/{plan_id}/changes/apply", {}),
    "reject_changes": Call("POST", "/api/v1/plans/{plan_id}/changes/reject", {}),
    "reject_hunks": Call(
        "POST",
        "/api/v1/plans/{plan_id}/changes/reject-hunks",
        {"path": "README.md", "ids": ["chg_x"], "content": "kept\n"},
    ),
    "get_plan_usage": Call("GET", "/api/v1/plans/{plan_id}/usage"),
    "get_project_usage": Call("GET", "/api/v1/projects/{project_id}/usage"),
    "get_versions": Call("GET", "/api/v1/plans/{plan_id}/versions"),
    "list_packs": Call("GET", "/api/v1/model-packs"),
    "get_models": Call("GET", "/api/v1/plans/{plan_id}/models"),
    "put_models": Call("PUT", "/api/v1/plans/{plan_id}/models", {"settings": {"pack": "openai"}}),
    "rewind": Call("POST", "/api/v1/plans/{plan_id}/rewind", {"version": 1}),
    "undo_rewind": Call("POST", "/api/v1/plans/{plan_id}/rewind/undo", {}),
    "list_branches": Call("GET", "/api/v1/plans/{plan_id}/branches"),
    "create_branch": Call("POST", "/api/v1/plans/{plan_id}/branches", {"name": "feature"}),
    "delete_branch": Call("DELETE", "/api/v1/plans/{plan_id}/branches/{name}"),
    "rename_plan": Call("POST", "/api/v1/plans/{plan_id}/rename", {"name": "renamed"}),
    "archive_plan": Call("POST", "/api/v1/plans/{plan_id}/archive", {}),
    "unarchive_plan": Call("POST", "/api/v1/plans/{plan_id}/unarchive", {}),
    "delete_plan": Call("DELETE", "/api/v1/plans/{plan_id}"),
    "list_streams": Call("GET", "/api/v1/plans/{plan_id}/streams"),
    "get_stream": Call("GET", "/api/v1/streams/{stream_id}"),
    "create_seal": Call("POST", "/api/v1/seals"),
}
BODYLESS = {"create_seal"}
"""POST routes that take no body and never read one (docs/protocol.md says so)."""
POSTS = {
    name: call for name, call in CALLS.items() if call.method == "POST" and name not in BODYLESS
}
WITH_IDS = {name: call for name, call in CALLS.items() if call.has_ids}
UNKNOWN = Ids("prj_unknown", "pl_unknown", "st_unknown")
PUBLIC = {("GET", "/api/v1/health")}


def _route_keys() -> set[tuple[str, str]]:
    keys = set()
    for route in rest.ROUTES:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                keys.add((method, route.path))
    return keys


def test_the_call_table_covers_every_route() -> None:
    assert {(c.method, c.path) for c in CALLS.values()} | PUBLIC == _route_keys()


@pytest.fixture
def ids(server: Server, emulator: Emulator) -> Ids:
    """A project and a plan with one finished stream that proposed two changes."""
    project_id = server.new_project()
    plan_id = server.new_plan(project_id)
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=40))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    assert check_sequence(events).status == "finished"
    return Ids(project_id, plan_id, events[0].stream_id)


def _call(server: Server, call: Call, ids: Ids, **kwargs: Any) -> httpx.Response:
    if "content" not in kwargs and call.body is not None:
        kwargs["json"] = call.body
    kwargs.setdefault("headers", server.auth)
    return server.client.request(call.method, call.url(ids), **kwargs)


# -- authentication and the error shape, on every route -------------------------------------


@pytest.fixture
def plan_ids(server: Server) -> Ids:
    """A project and a plan; no stream (for requests refused before any lookup)."""
    project_id = server.new_project()
    return Ids(project_id, server.new_plan(project_id), "st_unused")


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_route_needs_the_token(server: Server, plan_ids: Ids, call: Call) -> None:
    before = server.ok("GET", f"/api/v1/plans/{plan_ids.plan_id}/versions")
    assert_error(_call(server, call, plan_ids, headers={}), 401, "unauthorized")
    wrong = {"Authorization": "Bearer not-the-token"}
    message = assert_error(_call(server, call, plan_ids, headers=wrong), 401, "unauthorized")
    assert "not-the-token" not in message
    # Refused before any handler logic: nothing was written.
    assert server.ok("GET", f"/api/v1/plans/{plan_ids.plan_id}/versions") == before
    assert len(server.ok("GET", "/api/v1/projects")["projects"]) == 1


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "bearer  ", "Token abc", "Bearer a b", "Bearertoken"],
)
def test_malformed_authorization_headers_are_refused(server: Server, header: str) -> None:
    response = server.client.get("/api/v1/projects", headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")


def test_a_token_is_read_from_the_data_folder_and_the_scheme_is_case_insensitive(
    server: Server,
) -> None:
    token = (server.data_dir / "local-token").read_text().strip()
    assert len(token) >= 32
    response = server.client.get("/api/v1/projects", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_the_token_file_is_private_and_survives_a_restart(settings: Settings) -> None:
    with running(settings) as first:
        token = first.auth["Authorization"]
    path: Path = settings.data_dir / "local-token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    with running(settings) as second:
        assert second.auth["Authorization"] == token
        assert second.get("/api/v1/projects").status_code == 200


@pytest.mark.parametrize("call", WITH_IDS.values(), ids=WITH_IDS.keys())
def test_every_route_answers_unknown_ids_with_not_found(server: Server, call: Call) -> None:
    assert_error(_call(server, call, UNKNOWN), 404, "not_found")


NOT_OBJECTS = [b"{not json", b"[1, 2]", b'"a string"', b"42", b"null", b'{"a": "\xff"}']


@pytest.mark.parametrize("call", POSTS.values(), ids=POSTS.keys())
def test_every_post_route_refuses_a_body_that_is_not_a_json_object(
    server: Server, plan_ids: Ids, call: Call
) -> None:
    headers = server.auth | {"Content-Type": "application/json"}
    for body in NOT_OBJECTS:
        response = _call(server, call, plan_ids, content=body, headers=headers)
        assert_error(response, 400, "invalid_request")


def test_a_deeply_nested_body_is_a_bad_request(server: Server) -> None:
    body = b"[" * 100_000
    response = server.client.post("/api/v1/projects", content=body, headers=server.auth)
    assert_error(response, 400, "invalid_request")


@pytest.fixture
def small_server(data_dir: Path) -> Iterator[Server]:
    with running(load_settings(data_dir, max_request_bytes=1024)) as srv:
        yield srv


@pytest.mark.parametrize("call", POSTS.values(), ids=POSTS.keys())
def test_every_post_route_refuses_an_oversized_body(small_server: Server, call: Call) -> None:
    project_id = small_server.new_project()
    ids = Ids(project_id, small_server.new_plan(project_id), "st_unused")
    big = json.dumps({"name": "x" * 2000}).encode()
    # With a declared length, refused before reading; streamed (chunked), refused while reading.
    declared = _call(small_server, call, ids, content=big)
    assert_error(declared, 413, "message_too_large")

    def chunks() -> Any:
        for i in range(0, len(big), 256):
            yield big[i : i + 256]

    streamed = _call(small_server, call, ids, content=chunks())
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "message_too_large")


def test_a_body_just_under_the_limit_is_accepted(small_server: Server) -> None:
    body = json.dumps({"name": "n", "padding": "p" * 980}).encode()
    assert 1000 < len(body) <= 1024
    response = small_server.client.post("/api/v1/projects", content=body, headers=small_server.auth)
    assert response.status_code == 201


def test_unknown_routes_and_methods_use_the_error_shape(server: Server) -> None:
    assert_error(server.get("/api/v1/nope"), 404, "not_found")
    deleted = server.client.delete("/api/v1/projects", headers=server.auth)
    assert_error(deleted, 405, "invalid_request")
    assert_error(server.post("/api/v1/plans/pl_x/convo", {}), 405, "invalid_request")


def test_a_foreign_host_header_gets_the_error_shape(server: Server) -> None:
    response = server.client.get(
        "/api/v1/projects", headers=server.auth | {"Host": "rebind.example"}
    )
    assert response.status_code == 403
    body = response.json()
    assert sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == "forbidden"
    for host in ("127.0.0.1:7526", "localhost", "[::1]:7526", "LOCALHOST:80"):
        ok = server.client.get("/api/v1/projects", headers=server.auth | {"Host": host})
        assert ok.status_code == 200, host


def test_the_foreign_host_status_is_the_one_its_code_maps_to(server: Server) -> None:
    response = server.client.get("/api/v1/health", headers={"Host": "rebind.example"})
    assert response.status_code == HTTP_STATUS[ErrorCode(response.json()["error"]["code"])]


def test_a_foreign_host_cannot_open_the_stream_socket(server: Server) -> None:
    with pytest.raises(WebSocketDisconnect) as caught:
        with server.client.websocket_connect(
            STREAMS_URL,
            subprotocols=[SUBPROTOCOL],
            headers=server.auth | {"Host": "rebind.example"},
        ):
            pass
    assert caught.value.code == 4403


# -- happy paths ----------------------------------------------------------------------------


def test_health_is_public_and_says_nothing_private(server: Server) -> None:
    response = server.client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body == {"ok": True, "version": rest.VERSION, "workers_ready": body["workers_ready"]}
    assert isinstance(body["workers_ready"], bool)


def test_health_says_when_the_idle_workers_are_ready(server: Server) -> None:
    # Ready once the idle workers wanted (2 by default) wait for a stream.
    def ready() -> bool:
        return bool(server.client.get("/api/v1/health").json()["workers_ready"])

    wait_until(ready, timeout=30)
    assert len(server.worker_pids()) == server.settings.idle_workers == 2


def test_projects_are_created_listed_and_read(server: Server) -> None:
    assert server.ok("GET", "/api/v1/projects") == {"projects": []}
    response = server.post("/api/v1/projects", {"name": "  shop  "})
    assert response.status_code == 201
    project = response.json()
    assert sorted(project) == ["created_at", "id", "name"]
    assert project["name"] == "shop" and project["id"].startswith("prj_")
    assert server.ok("GET", "/api/v1/projects") == {"projects": [project]}
    assert server.ok("GET", f"/api/v1/projects/{project['id']}") == project


def test_plans_are_created_listed_and_read(server: Server) -> None:
    project_id = server.new_project()
    response = server.post(f"/api/v1/projects/{project_id}/plans", None)
    assert response.status_code == 201
    first = response.json()
    assert first["name"] == "plan-1" and first["project_id"] == project_id
    named = server.ok("POST", f"/api/v1/projects/{project_id}/plans", {"name": "refactor"})
    listed = server.ok("GET", f"/api/v1/projects/{project_id}/plans")["plans"]
    assert [p["id"] for p in listed] == [first["id"], named["id"]]
    plan = server.ok("GET", f"/api/v1/plans/{first['id']}")
    assert plan == first | {
        "branches": ["main"],
        "version": 1,
        "context_items": 0,
        "messages": 0,
        "pending_changes": 0,
    }


def test_a_duplicate_plan_name_is_a_conflict(server: Server) -> None:
    project_id = server.new_project()
    server.new_plan(project_id, "same")
    response = server.post(f"/api/v1/projects/{project_id}/plans", {"name": "same"})
    assert_error(response, 409, "conflict")


def test_a_plan_on_an_unknown_branch_is_not_found(server: Server, plan_id: str) -> None:
    assert_error(server.get(f"/api/v1/plans/{plan_id}?branch=nope"), 404, "not_found")
    assert_error(server.get(f"/api/v1/plans/{plan_id}/context?branch=nope"), 404, "not_found")


def test_context_is_loaded_listed_and_removed(server: Server, plan_id: str) -> None:
    url = f"/api/v1/plans/{plan_id}/context"
    items = [
        {"kind": "file", "name": "src/a.py", "content": "a = 1\n"},
        {"kind": "file", "name": "docs/b.md", "content": "# b\n"},
        {"kind": "note", "name": "todo", "content": "keep it small"},
    ]
    loaded = server.ok("POST", url, {"items": items})
    assert loaded == {
        "added": ["src/a.py", "docs/b.md", "todo"],
        "updated": [],
        "unchanged": [],
        "version": 2,
    }
    again = server.ok("POST", url, {"items": items[:1]})
    assert (again["unchanged"], again["version"]) == (["src/a.py"], None)

    listed = server.ok("GET", url)["items"]
    assert [i["name"] for i in listed] == ["src/a.py", "docs/b.md", "todo"]
    assert all(i["content"] is None for i in listed)
    with_content = server.ok("GET", f"{url}?content=1")["items"]
    assert [i["content"] for i in with_content] == [i["content"] for i in items]
    assert server.ok("GET", f"/api/v1/plans/{plan_id}")["context_items"] == 3

    removed = server.ok("POST", f"{url}/remove", {"names": ["docs"]})
    assert removed == {"removed": ["docs/b.md"]}
    assert server.ok("POST", f"{url}/remove", {"all": True}) == {"removed": ["src/a.py", "todo"]}
    assert server.ok("GET", url) == {"items": []}


def test_conversation_changes_versions_and_streams_after_a_stream(server: Server, ids: Ids) -> None:
    plan = f"/api/v1/plans/{ids.plan_id}"
    messages = server.ok("GET", f"{plan}/convo")["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[1]["content"] == FILE_REPLY

    pending = server.ok("GET", f"{plan}/changes")["changes"]
    assert [(c["path"], c["op"]["op"], c["status"]) for c in pending] == [
        ("src/app.py", "write", "pending"),
        ("README.md", "edit", "pending"),
    ]
    assert pending[0]["op"]["content"] == "def main():\n    return 42\n"
    assert {c["stream_id"] for c in pending} == {ids.stream_id}

    applied = server.ok("POST", f"{plan}/changes/apply", {"paths": ["src/app.py"]})["changes"]
    assert applied == [{"id": pending[0]["id"], "path": "src/app.py", "status": "applied"}]
    rejected = server.ok("POST", f"{plan}/changes/reject", {"ids": [pending[1]["id"]]})
    assert [c["id"] for c in rejected["changes"]] == [pending[1]["id"]]
    assert server.ok("GET", f"{plan}/changes")["changes"] == []
    everything = server.ok("GET", f"{plan}/changes?status=all")["changes"]
    assert [c["status"] for c in everything] == ["applied", "rejected"]
    assert [c["id"] for c in server.ok("GET", f"{plan}/changes?status=applied")["changes"]] == [
        pending[0]["id"]
    ]

    history = server.ok("GET", f"{plan}/versions")["versions"]
    assert [v["number"] for v in history] == [1, 2, 3, 4, 5]
    assert [v["kind"] for v in history] == ["create", "prompt", "reply", "apply", "reject"]

    streams = server.ok("GET", f"{plan}/streams")["streams"]
    assert [s["id"] for s in streams] == [ids.stream_id]
    row = server.ok("GET", f"/api/v1/streams/{ids.stream_id}")
    assert row == streams[0]
    assert (row["status"], row["mode"], row["model"]) == ("finished", "tell", "openai/gpt-4.1")
    assert row["last_seq"] > 1 and row["ended_at"] >= row["started_at"]


def test_applying_with_an_empty_body_applies_every_pending_change(server: Server, ids: Ids) -> None:
    plan = f"/api/v1/plans/{ids.plan_id}"
    moved = server.ok("POST", f"{plan}/changes/apply", None)["changes"]
    assert len(moved) == 2
    assert server.ok("GET", f"{plan}")["pending_changes"] == 0


# -- seals ----------------------------------------------------------------------------------


@pytest.fixture
def on_demand_server(data_dir: Path) -> Iterator[Server]:
    """No idle workers: a worker exists only once a seal has asked for one."""
    with running(load_settings(data_dir, idle_workers=0)) as srv:
        yield srv


def test_a_seal_has_the_documented_shape(on_demand_server: Server) -> None:
    server = on_demand_server
    before = time.time()
    response = server.post("/api/v1/seals")
    assert response.status_code == 201
    seal = response.json()
    assert sorted(seal) == ["expires_at", "public_key", "seal_id", "suite"]
    assert seal["suite"] == SEAL_SUITE
    assert seal["seal_id"].startswith("st_")  # the id of the stream it will start
    public_key = seal["public_key"]
    assert "=" not in public_key  # base64url, unpadded
    assert len(base64.urlsafe_b64decode(public_key + "=")) == 32  # a raw X25519 public key
    assert before < seal["expires_at"] <= time.time() + 61  # a minute, by default
    assert len(server.worker_pids()) == 1  # the worker the seal names


def test_a_seal_needs_the_token_and_makes_no_worker_without_it(on_demand_server: Server) -> None:
    server = on_demand_server
    assert_error(server.client.post("/api/v1/seals"), 401, "unauthorized")
    wrong = {"Authorization": "Bearer not-the-token"}
    assert_error(server.client.post("/api/v1/seals", headers=wrong), 401, "unauthorized")
    time.sleep(0.2)  # a worker, had one been asked for, would be starting by now
    assert server.worker_pids() == []
    assert_error(server.get("/api/v1/seals"), 405, "invalid_request")


def test_each_seal_is_new_even_with_the_same_idempotency_key(on_demand_server: Server) -> None:
    # A seal is used once, so a retried request must get a fresh one, not the stored answer.
    server = on_demand_server
    key = {"Idempotency-Key": "seal-retry-00001"}
    first = server.post("/api/v1/seals", headers=key).json()
    second = server.post("/api/v1/seals", headers=key).json()
    assert first["seal_id"] != second["seal_id"]
    assert first["public_key"] != second["public_key"]
    assert len(server.worker_pids()) == 2  # one worker, and one key pair, per seal


# -- invalid bodies -------------------------------------------------------------------------

INVALID: list[tuple[str, Any]] = [
    ("create_project", {}),
    ("create_project", {"name": 5}),
    ("create_project", {"name": ["a"]}),
    ("create_project", {"name": "   "}),
    ("create_plan", {"name": 5}),
    ("create_plan", {"name": ""}),
    ("load_context", {}),
    ("load_context", {"items": "a.py"}),
    ("load_context", {"items": ["a.py"]}),
    ("load_context", {"items": [{"kind": "file", "name": "a.py"}]}),
    ("load_context", {"items": [{"kind": "file", "name": "a.py", "content": 5}]}),
    ("load_context", {"items": [{"kind": 1, "name": "a.py", "content": ""}]}),
    ("load_context", {"items": [{"kind": "folder", "name": "a", "content": ""}]}),
    ("load_context", {"items": [{"kind": "note", "name": " ", "content": "x"}]}),
    ("remove_context", {}),
    ("remove_context", {"names": "a.py"}),
    ("remove_context", {"names": [1]}),
    ("remove_context", {"all": "yes"}),
    ("apply_changes", {"ids": "chg_x"}),
    ("apply_changes", {"paths": [1]}),
    ("apply_changes", {"ids": ["chg_not_pending"]}),
    ("reject_changes", {"paths": "README.md"}),
]


@pytest.mark.parametrize(("name", "body"), INVALID)
def test_invalid_bodies_are_refused(server: Server, plan_ids: Ids, name: str, body: Any) -> None:
    before = server.ok("GET", f"/api/v1/plans/{plan_ids.plan_id}/versions")
    response = _call(server, CALLS[name], plan_ids, content=json.dumps(body).encode())
    assert_error(response, 400, "invalid_request")
    assert server.ok("GET", f"/api/v1/plans/{plan_ids.plan_id}/versions") == before


def test_an_unknown_change_status_filter_is_refused(server: Server, plan_id: str) -> None:
    response = server.get(f"/api/v1/plans/{plan_id}/changes?status=maybe")
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "path",
    [
        "../outside.py",
        "src/../../outside.py",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "C:/x.py",
        ".git/config",
        "src/.git/hooks/pre-commit",
        ".plancast/state",
        "a\x00b.py",
        "line\nbreak.py",
        "",
        ".",
    ],
)
def test_unsafe_context_paths_are_refused(server: Server, plan_id: str, path: str) -> None:
    item = {"kind": "file", "name": path, "content": "x"}
    response = server.post(f"/api/v1/plans/{plan_id}/context", {"items": [item]})
    assert_error(response, 400, "unsafe_path")
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/context") == {"items": []}


def test_one_unsafe_path_refuses_the_whole_load(server: Server, plan_id: str) -> None:
    items = [
        {"kind": "file", "name": "fine.py", "content": "x"},
        {"kind": "file", "name": "../bad.py", "content": "y"},
    ]
    response = server.post(f"/api/v1/plans/{plan_id}/context", {"items": items})
    assert_error(response, 400, "unsafe_path")
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"][-1]["number"] == 1


def test_applying_and_rejecting_keep_no_file_text_with_their_idempotency_keys(
    server: Server, ids: Ids
) -> None:
    plan = f"/api/v1/plans/{ids.plan_id}"
    texts = []
    for route, key in (("apply", "apply-key-000001"), ("reject", "reject-key-00001")):
        headers = {"Idempotency-Key": key}
        response = server.post(f"{plan}/changes/{route}", {}, headers=headers)
        assert response.status_code == 200
        assert "return 42" not in response.text and "new line" not in response.text
        # What is kept for a retry is that response: ids and paths, and no file text.
        retried = server.post(f"{plan}/changes/{route}", {}, headers=headers)
        assert retried.json() == response.json()
        texts.append(response.text)
    assert "src/app.py" in texts[0]  # the ids and paths are there
    stored = query(server.data_dir, "SELECT body FROM idempotency_keys")
    assert len(stored) == 2
    assert all(body.startswith("pce1:") for (body,) in stored)  # and encrypted at rest
