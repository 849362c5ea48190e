"""The model routes: the built-in packs, and a plan's model settings read and replaced.

A plan's settings live in its versioned state: a change is one version of kind 'settings', a
change to the same settings is none, and a rewind takes settings back with everything else.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from plancast.shared import BUILTIN_PACKS, ROLES
from tests.server.helpers import Server


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return str(error["message"])


def put(server: Server, plan_id: str, body: Any, **params: str) -> httpx.Response:
    return server.client.request(
        "PUT", f"/api/v1/plans/{plan_id}/models", json=body, headers=server.auth, params=params
    )


def versions(server: Server, plan_id: str) -> list[dict[str, Any]]:
    return list(server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"])


def role_models(resolved: dict[str, Any]) -> dict[str, str]:
    return {role: resolved["roles"][role]["model"] for role in ROLES}


# -- packs ------------------------------------------------------------------------------------


def test_the_builtin_packs_are_listed_resolved(server: Server) -> None:
    packs = server.ok("GET", "/api/v1/model-packs")["packs"]
    assert [p["name"] for p in packs] == list(BUILTIN_PACKS)
    by_name = {p["name"]: p for p in packs}
    openai = by_name["openai"]
    assert openai["description"] == BUILTIN_PACKS["openai"].description
    assert openai["pack"] == "openai"
    assert role_models(openai) == {
        "planner": "openai/gpt-5.5",
        "builder": "openai/gpt-5.5",
        "summarizer": "openai/gpt-5-mini",
        "namer": "openai/gpt-5-mini",
        "committer": "openai/gpt-5-mini",
    }
    assert openai["roles"]["planner"]["max_input_tokens"] == 350_000
    assert openai["large_context"] == {"model": "openai/gpt-4.1", "max_input_tokens": 950_000}
    assert openai["providers"] == {"openai": [*ROLES, "large_context"]}
    assert by_name["anthropic"]["large_context"] is None
    assert by_name["anthropic"]["providers"] == {"anthropic": list(ROLES)}
    assert set(role_models(by_name["ollama"]).values()) == {"ollama/llama3.1"}
    assert all(p["auto_continue"] == 4 and p["summary_tokens"] == 24_000 for p in packs)


# -- reading ----------------------------------------------------------------------------------


def test_a_new_plan_sets_nothing_and_resolves_for_the_planner_asked(
    server: Server, plan_id: str
) -> None:
    url = f"/api/v1/plans/{plan_id}/models"
    plain = server.ok("GET", url)
    assert plain["settings"] == {}
    assert plain["resolved"]["pack"] == "openai"
    assert role_models(plain["resolved"]) == role_models(
        server.ok("GET", "/api/v1/model-packs")["packs"][0]
    )

    asked = server.ok("GET", f"{url}?planner=anthropic/claude-opus-9")
    assert asked["settings"] == {}
    assert asked["resolved"]["pack"] == "anthropic"
    assert asked["resolved"]["roles"]["planner"] == {
        "model": "anthropic/claude-opus-9",
        "max_input_tokens": 180_000,
    }
    assert asked["resolved"]["roles"]["namer"]["model"] == "anthropic/claude-haiku-4-5"
    assert asked["resolved"]["providers"] == {"anthropic": list(ROLES)}


def test_the_plans_own_settings_win_over_the_planner_asked(server: Server, plan_id: str) -> None:
    assert put(server, plan_id, {"settings": {"pack": "azure"}}).status_code == 200
    got = server.ok("GET", f"/api/v1/plans/{plan_id}/models?planner=anthropic/claude-opus-9")
    assert got["settings"] == {"pack": "azure"}
    assert got["resolved"]["pack"] == "azure"
    assert set(role_models(got["resolved"]).values()) == {"azure/gpt-5.5", "azure/gpt-5-mini"}


def test_a_bad_planner_query_is_refused(server: Server, plan_id: str) -> None:
    response = server.get(f"/api/v1/plans/{plan_id}/models?planner=gpt-4o")
    assert "provider/model" in assert_error(response, 400, "invalid_request")


def test_an_unknown_plan_or_branch_is_not_found(server: Server, plan_id: str) -> None:
    assert_error(server.get("/api/v1/plans/pl_nosuchplan/models"), 404, "not_found")
    assert_error(put(server, "pl_nosuchplan", {"settings": {}}), 404, "not_found")
    assert_error(server.get(f"/api/v1/plans/{plan_id}/models?branch=nope"), 404, "not_found")
    assert_error(put(server, plan_id, {"settings": {}}, branch="nope"), 404, "not_found")


# -- replacing --------------------------------------------------------------------------------


def test_a_change_is_one_settings_version_and_the_same_change_is_none(
    server: Server, plan_id: str
) -> None:
    before = versions(server, plan_id)
    settings: dict[str, Any] = {
        "pack": "openai",
        "roles": {"namer": {"model": "openai/gpt-4.1-nano", "max_input_tokens": 4_000}},
        "auto_continue": 2,
        "summary_tokens": 5_000,
    }
    response = put(server, plan_id, {"settings": settings, "description": "cheaper names"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"] == settings
    assert body["resolved"]["roles"]["namer"] == settings["roles"]["namer"]
    assert body["resolved"]["auto_continue"] == 2
    after = versions(server, plan_id)
    assert len(after) == len(before) + 1
    assert after[-1]["number"] == body["version"]
    assert (after[-1]["kind"], after[-1]["description"]) == ("settings", "cheaper names")

    again = put(server, plan_id, {"settings": settings, "description": "again"})
    assert again.status_code == 200 and again.json()["version"] is None
    # The same settings written another way (a bare model name, keys reordered) are the same.
    same = {
        "summary_tokens": 5_000,
        "auto_continue": 2,
        "roles": {"namer": {"max_input_tokens": 4_000, "model": "openai/gpt-4.1-nano"}},
        "pack": "openai",
    }
    assert put(server, plan_id, {"settings": same}).json()["version"] is None
    assert versions(server, plan_id) == after

    got = server.ok("GET", f"/api/v1/plans/{plan_id}/models")
    assert got["settings"] == settings
    assert got["resolved"]["summary_tokens"] == 5_000


def test_defaults_written_out_are_no_change(server: Server, plan_id: str) -> None:
    before = versions(server, plan_id)
    response = put(server, plan_id, {"settings": {"auto_continue": 4, "summary_tokens": 24_000}})
    assert response.status_code == 200 and response.json()["version"] is None
    assert response.json()["settings"] == {}
    assert versions(server, plan_id) == before


def test_a_change_without_a_description_gets_one(server: Server, plan_id: str) -> None:
    assert put(server, plan_id, {"settings": {"pack": "ollama"}}).json()["version"] is not None
    assert versions(server, plan_id)[-1]["description"] == "model settings changed"


def test_rewinding_takes_the_settings_back(server: Server, plan_id: str) -> None:
    first = put(server, plan_id, {"settings": {"pack": "anthropic"}}).json()["version"]
    put(server, plan_id, {"settings": {"pack": "azure"}})
    server.ok("POST", f"/api/v1/plans/{plan_id}/rewind", {"version": first})
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/models")["settings"] == {"pack": "anthropic"}
    server.ok("POST", f"/api/v1/plans/{plan_id}/rewind", {"version": 1})
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/models")["settings"] == {}


def test_settings_are_per_branch(server: Server, plan_id: str) -> None:
    server.ok("POST", f"/api/v1/plans/{plan_id}/branches", {"name": "other"})
    assert put(server, plan_id, {"settings": {"pack": "ollama"}}, branch="other").status_code == 200
    url = f"/api/v1/plans/{plan_id}/models"
    assert server.ok("GET", f"{url}?branch=other")["settings"] == {"pack": "ollama"}
    assert server.ok("GET", url)["settings"] == {}


def test_a_custom_pack_is_stored_whole(server: Server, plan_id: str) -> None:
    settings = {
        "pack": "split",
        "roles": {
            "planner": {"model": "anthropic/claude-sonnet-5-5", "max_input_tokens": 180_000},
            "namer": {"model": "openai/gpt-5-mini", "max_input_tokens": 8_000},
        },
    }
    body = put(server, plan_id, {"settings": settings}).json()
    assert body["resolved"]["pack"] == "split"
    assert body["resolved"]["large_context"] is None
    assert body["resolved"]["providers"] == {
        "anthropic": ["planner", "builder", "summarizer", "committer"],
        "openai": ["namer"],
    }
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/models")["settings"] == settings


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "'settings'"),
        ({"settings": "openai"}, "'settings'"),
        ({"settings": {"pack": "openai"}, "description": 5}, "'description'"),
        ({"settings": {"roles": {"painter": "openai/x"}}}, "unknown role 'painter'"),
        ({"settings": {"auto_continue": 99}}, "auto_continue"),
        ({"settings": {"auto_continue": "2"}}, "'auto_continue'"),
        ({"settings": {"summary_tokens": 10}}, "summary_tokens"),
        ({"settings": {"pack": "nonesuch"}}, "unknown pack 'nonesuch'"),
        ({"settings": {"roles": {"planner": "gpt-4o"}}}, "provider/model"),
        ({"settings": {"roles": {"planner": {"model": "openai/x"}}, "colour": 1}}, "'colour'"),
        ({"settings": {"large_context": {"model": "openai/x", "max_input_tokens": 0}}}, "1"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(
    server: Server, plan_id: str, body: dict[str, Any], words: str
) -> None:
    before = versions(server, plan_id)
    message = assert_error(put(server, plan_id, body), 400, "invalid_request")
    assert words in message
    assert versions(server, plan_id) == before
    assert server.ok("GET", f"/api/v1/plans/{plan_id}/models")["settings"] == {}


def test_a_body_that_is_not_an_object_is_refused(server: Server, plan_id: str) -> None:
    assert_error(put(server, plan_id, ["settings"]), 400, "invalid_request")
