"""A state-changing request retried with the same Idempotency-Key is applied once."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import load_settings, running


def test_a_retried_create_is_applied_once(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        key = {"Idempotency-Key": "create-project-0001"}
        first = server.post("/api/v1/projects", {"name": "once"}, headers=key)
        again = server.post("/api/v1/projects", {"name": "once"}, headers=key)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        names = [p["name"] for p in server.ok("GET", "/api/v1/projects")["projects"]]
        assert names.count("once") == 1


def test_a_retried_context_load_makes_one_version(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        plan_id = server.new_plan()
        body = {"items": [{"kind": "note", "name": "n", "content": "remember this"}]}
        key = {"Idempotency-Key": "load-note-000001"}
        for _ in range(3):
            response = server.post(f"/api/v1/plans/{plan_id}/context", body, headers=key)
            assert response.status_code == 200
        items = server.ok("GET", f"/api/v1/plans/{plan_id}/context")["items"]
        assert [i["name"] for i in items] == ["n"]  # notes are never deduplicated otherwise


def test_a_key_reused_for_another_request_is_a_conflict(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        key = {"Idempotency-Key": "shared-key-00001"}
        assert server.post("/api/v1/projects", {"name": "a"}, headers=key).status_code == 201
        plan = server.post("/api/v1/projects/prj_x/plans", {}, headers=key)
        assert plan.status_code == 409 and plan.json()["error"]["code"] == "conflict"


def test_a_failed_request_can_be_retried_with_its_key(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        key = {"Idempotency-Key": "retry-after-fail"}
        bad = server.post("/api/v1/projects", {"name": ""}, headers=key)
        assert bad.status_code == 400
        good = server.post("/api/v1/projects", {"name": "fixed"}, headers=key)
        assert good.status_code == 201 and good.json()["name"] == "fixed"


def test_a_malformed_key_is_refused(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        response = server.post("/api/v1/projects", {"name": "x"}, headers={"Idempotency-Key": "x"})
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["error"]["message"]
