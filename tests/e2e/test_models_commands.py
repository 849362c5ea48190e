"""`plancast models`, `models packs` and `set-model`, against the real server process.

The model settings live in the plan's versions on the server; the defaults (``pack``) live in
the client's config file, and custom packs in ``model-packs.toml`` beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

PACKS_TOML = """
[packs.cheap]
description = "small models for everything"
planner = "openai/gpt-4.1-mini"
namer = { model = "openai/gpt-4.1-nano", max_input_tokens = 8000 }
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def failed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"exit 0\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def config_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "plancast"


def write_packs(text: str = PACKS_TOML) -> None:
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "model-packs.toml").write_text(text)


def shown(cli: Cli) -> dict[str, Any]:
    data = json.loads(ok(cli("models", "--json")))
    assert isinstance(data, dict)
    return data


def role_models(data: dict[str, Any]) -> dict[str, str]:
    return {role: entry["model"] for role, entry in data["roles"].items()}


def versions(cli: Cli) -> list[dict[str, Any]]:
    return list(json.loads(ok(cli("log", "--json")))["versions"])


def test_models_shows_the_defaults_then_what_the_plan_sets(cli: Cli) -> None:
    ok(cli("new"))
    text = ok(cli("models"))
    assert "pack openai (the defaults: the plan sets none)" in text
    assert "openai/gpt-4.1" in text  # PLANCAST_MODEL, as the planner
    data = shown(cli)
    assert data["settings"] == {} and data["pack"] == "openai"
    assert role_models(data) == {
        "planner": "openai/gpt-4.1",
        "builder": "openai/gpt-5.5",
        "summarizer": "openai/gpt-5-mini",
        "namer": "openai/gpt-5-mini",
        "committer": "openai/gpt-5-mini",
        "large_context": "openai/gpt-4.1",
    }
    assert (data["auto_continue"], data["summary_tokens"]) == (4, 24_000)

    ok(cli("set-model", "builder", "openai/gpt-4o"))
    data = shown(cli)
    assert data["settings"]["roles"] == {
        "builder": {"model": "openai/gpt-4o", "max_input_tokens": 350_000}
    }
    assert role_models(data)["builder"] == "openai/gpt-4o"
    assert role_models(data)["planner"] == "openai/gpt-4.1"  # the rest as before
    assert "openai/gpt-4o" in ok(cli("models"))
    assert [v["kind"] for v in versions(cli)][-1] == "settings"

    ok(cli("set-model", "anthropic/claude-opus-9"))  # one word: the planner
    ok(cli("set-model", "--auto-continue", "1", "--summary-tokens", "5000"))
    data = shown(cli)
    assert role_models(data)["planner"] == "anthropic/claude-opus-9"
    assert role_models(data)["builder"] == "openai/gpt-4o"
    assert (data["auto_continue"], data["summary_tokens"]) == (1, 5_000)
    assert "pack anthropic (set for this plan)" in ok(cli("models"))

    count = len(versions(cli))
    ok(cli("set-model", "--reset"))
    assert shown(cli)["settings"] == {}
    assert len(versions(cli)) == count + 1
    ok(cli("set-model", "--reset"))  # nothing left to reset: no version
    assert len(versions(cli)) == count + 1


def test_packs_lists_the_builtin_and_custom_packs(cli: Cli) -> None:
    ok(cli("new"))
    before = ok(cli("models", "packs"))
    for name in ("openai (built-in)", "anthropic (built-in)", "azure (built-in)", "ollama"):
        assert name in before
    assert "cheap" not in before

    write_packs()
    listed = ok(cli("models", "packs"))
    assert "cheap (custom) · small models for everything" in listed
    packs = {p["name"]: p for p in json.loads(ok(cli("models", "packs", "--json")))}
    assert packs["openai"]["kind"] == "built-in"
    assert packs["cheap"]["kind"] == "custom"
    assert packs["cheap"]["roles"] == {
        "planner": "openai/gpt-4.1-mini",
        "builder": "openai/gpt-4.1-mini",
        "summarizer": "openai/gpt-4.1-mini",
        "namer": "openai/gpt-4.1-nano",
        "committer": "openai/gpt-4.1-mini",
    }


def test_a_bad_packs_file_is_reported(cli: Cli) -> None:
    ok(cli("new"))
    write_packs('[packs.broken]\nnamer = "openai/x"\n')
    assert "pack 'broken' needs a planner" in failed(cli("models", "packs"))


def test_set_model_pack_custom_and_its_use(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    write_packs()
    ok(cli("set-model", "--pack", "cheap"))
    data = shown(cli)
    assert data["pack"] == "cheap" and data["settings"]["pack"] == "cheap"
    assert role_models(data) == {
        "planner": "openai/gpt-4.1-mini",
        "builder": "openai/gpt-4.1-mini",
        "summarizer": "openai/gpt-4.1-mini",
        "namer": "openai/gpt-4.1-nano",
        "committer": "openai/gpt-4.1-mini",
    }

    # The server needs no copy of the file: the pack travels whole.
    (config_dir() / "model-packs.toml").unlink()
    emulator.push(Reply(text="a plan"))
    ok(cli("tell", "plan something"))
    assert [r.model for r in emulator.requests] == ["gpt-4.1-mini"]
    assert [r.model for r in emulator.role_requests("namer")] == ["gpt-4.1-nano"]

    # -m wins for one stream, and changes nothing stored.
    emulator.push(Reply(text="another plan"))
    ok(cli("tell", "-m", "openai/gpt-4o", "plan again"))
    assert emulator.last_request.model == "gpt-4o"
    assert shown(cli)["pack"] == "cheap"


def test_bad_set_model_requests_are_refused(cli: Cli) -> None:
    ok(cli("new"))
    assert "unknown role 'painter'" in failed(cli("set-model", "painter", "openai/x"))
    assert "no model pack named 'nonesuch'" in failed(cli("set-model", "--pack", "nonesuch"))
    assert "say what to set" in failed(cli("set-model"))
    assert "auto_continue" in failed(cli("set-model", "--auto-continue", "50"))
    assert "provider/model" in failed(cli("set-model", "gpt-4o"))
    assert shown(cli)["settings"] == {}


def test_a_default_pack_applies_to_a_new_plan_at_its_first_tell(
    cli: Cli, emulator: Emulator
) -> None:
    write_packs()
    ok(cli("set-model", "--default", "--pack", "cheap"))
    assert 'pack = "cheap"' in (config_dir() / "config.toml").read_text()
    ok(cli("new"))
    assert all(v["kind"] != "settings" for v in versions(cli))
    # What the plan sets itself, short of a planner, stays when the default pack comes.
    ok(cli("set-model", "--auto-continue", "1"))
    assert "pack cheap (the default pack" in ok(cli("models"))
    before = shown(cli)
    assert before["pack"] == "cheap" and before["auto_continue"] == 1
    assert before["settings"] == {"auto_continue": 1}  # shown, not written yet
    emulator.push(Reply(text="planned with the default pack"))
    ok(cli("tell", "make a plan"))
    settings = [v for v in versions(cli) if v["kind"] == "settings"]
    assert len(settings) == 2 and "cheap" in settings[-1]["description"]
    assert emulator.last_request.model == "gpt-4.1-mini"  # the pack wins over PLANCAST_MODEL
    after = shown(cli)
    assert after["settings"]["pack"] == "cheap" and after["auto_continue"] == 1
    assert role_models(after) == role_models(before)

    emulator.push(Reply(text="again"))
    ok(cli("tell", "once more"))  # the plan has its pack now: no other version
    assert len([v for v in versions(cli) if v["kind"] == "settings"]) == 2

    assert "defaults hold a pack and a planner only" in failed(
        cli("set-model", "--default", "namer", "openai/x")
    )
    ok(cli("set-model", "--default", "--reset"))
    assert "cheap" not in (config_dir() / "config.toml").read_text()


def test_a_missing_key_for_a_roles_provider_names_the_role(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    ok(cli("set-model", "namer", "anthropic/claude-haiku-4-5"))
    out = failed(cli("tell", "plan something"))
    assert "namer" in out and "anthropic/claude-haiku-4-5" in out
    assert "ANTHROPIC_API_KEY" in out
    assert emulator.all_requests == []  # stopped before any work
    assert "running" not in ok(cli("ps")) and "finished" not in ok(cli("ps"))
