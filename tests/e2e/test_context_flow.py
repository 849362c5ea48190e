"""Context end to end: the real server process, the real CLI, files on disk, a loopback web page.

Covers what leaves the machine (the secret guard, the manifest and its question), why a path is
in or out, keeping the context fresh (update, the warning before tell, auto-update), and the
other context kinds (trees, URLs). Fabricated credentials are built at run time from pieces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.loopback_http import Route, serve
from tests.e2e.conftest import Cli, LiveServer
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e


def ok(result: Any) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


def fails(result: Any) -> str:
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return str(result.stderr)


def slack_token() -> str:
    return "xo" + "xb-" + "1029384756" + "-" + "Qw3Er5Ty7Ui9Op1As2Df4Gh6"


def server_context(cli: Cli, server: LiveServer) -> dict[str, dict[str, Any]]:
    """The plan's context as the server holds it, content included, by item name."""
    plan = json.loads((cli.project / ".plancast" / "project.json").read_text())["plan_id"]
    token = (server.data_dir / "local-token").read_text().strip()
    response = httpx.get(
        f"{server.url}/api/v1/plans/{plan}/context",
        params={"content": "1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return {item["name"]: item for item in response.json()["items"]}


def listing(cli: Cli) -> list[tuple[str, str]]:
    return [(i["kind"], i["name"]) for i in json.loads(ok(cli("ls", "--json")))["items"]]


def test_why_guard_and_manifest(cli: Cli, live_server: LiveServer) -> None:
    key = slack_token()
    project = cli.project
    (project / ".gitignore").write_text("build/\n")
    (project / "build").mkdir()
    (project / "build" / "out.txt").write_text("generated\n")
    (project / ".env").write_text("KEY=never\n")
    (project / "app.py").write_text("print('hello')\n")
    (project / "conf.py").write_text(f"DEBUG = False\nSLACK = '{key}'\n")
    ok(cli("new"))

    assert ok(cli("ignore", "why", "build/out.txt", "app.py", ".env")).splitlines() == [
        "out\t.gitignore:1:build/\tbuild/out.txt",
        "in\t::\tapp.py",
        "out\t<default>:1:.env\t.env",
    ]
    why = json.loads(ok(cli("ignore", "why", "--json", ".env")))["paths"][0]
    assert why["included"] is False and why["source"] == "<default>"

    loaded = cli("load", "-r", ".")
    err = fails(loaded)
    assert "secret: conf.py:2: slack-token xoxb-… (40 chars)" in err
    assert "held back 1 item(s) with secrets (not uploaded): conf.py" in err
    assert "to send: 2 files · " in err and "per request to openai/gpt-4.1" in err
    assert key not in loaded.stdout + err and key[5:15] not in err
    assert "loaded 2 new" in loaded.stdout
    assert sorted(server_context(cli, live_server)) == [".gitignore", "app.py"]

    ok(cli("load", "--redact-secrets", "conf.py"))
    stored = server_context(cli, live_server)["conf.py"]["content"]
    assert stored == "DEBUG = False\nSLACK = '[REDACTED:slack-token]'\n"
    assert key not in json.dumps(server_context(cli, live_server))
    assert listing(cli) == [("file", ".gitignore"), ("file", "app.py"), ("file", "conf.py")]


def test_a_large_upload_asks_first_and_refuses_without_a_terminal(cli: Cli) -> None:
    (cli.project / "big.py").write_text("x = 1\n" * 100)
    ok(cli("new"))
    env = {"PLANCAST_CONFIRM_TOKENS": "50"}
    err = fails(cli("load", "big.py", env=env))
    assert "~150 tokens is above PLANCAST_CONFIRM_TOKENS (50); upload?" in err
    assert "stdin is not a terminal, so nothing was sent; pass --yes" in err
    assert listing(cli) == []
    ok(cli("load", "--yes", "big.py", env=env))
    assert listing(cli) == [("file", "big.py")]


def test_update_and_the_stale_check_before_tell(
    cli: Cli, live_server: LiveServer, emulator: Emulator
) -> None:
    project = cli.project
    (project / "a.py").write_text("A_VERSION = 1\n")
    (project / "b.py").write_text("B = 1\n")
    ok(cli("new"))
    ok(cli("load", "a.py", "b.py"))
    assert "up to date (2 file(s) as on disk)" in ok(cli("update"))

    (project / "a.py").write_text("A_VERSION = 2\n")
    (project / "b.py").unlink()
    emulator.push(Reply(text="Noted."))
    told = cli("tell", "what changed?")
    ok(told)
    assert (
        "warning: stale context (changed on disk: a.py; gone from disk: b.py); "
        "`plancast update` re-sends them"
    ) in told.stderr
    assert "A_VERSION = 1" in json.dumps(emulator.last_request.body)  # sent as loaded

    updated = cli("update")
    out = ok(updated)
    assert "updated 1 file(s)" in out and "~ a.py" in out and "gone from disk: b.py" in out
    assert "`plancast rm b.py` removes them" in updated.stderr
    assert server_context(cli, live_server)["a.py"]["content"] == "A_VERSION = 2\n"
    ok(cli("update", "--yes"))
    assert listing(cli) == [("file", "a.py")]

    (project / "a.py").write_text("A_VERSION = 3\n")
    emulator.push(Reply(text="Noted again."))
    told = cli("tell", "and now?", env={"PLANCAST_AUTO_UPDATE": "1"})
    ok(told)
    assert "updated 1 changed file(s) before sending: a.py" in told.stderr
    assert "A_VERSION = 3" in json.dumps(emulator.last_request.body)
    assert "stale" not in told.stderr


def test_trees_and_urls(cli: Cli, live_server: LiveServer) -> None:
    project = cli.project
    (project / "src" / "pkg").mkdir(parents=True)
    (project / "src" / "main.py").write_text("TOP_SECRET_CONTENT = 1\n")
    (project / "src" / "pkg" / "util.py").write_text("")
    (project / "src" / ".env").write_text("KEY=1\n")
    ok(cli("new"))
    page = (
        b"<html><head><title>API guide</title><script>track()</script>"
        b"<style>p{}</style></head><body><h2>Usage</h2><p>Call <code>f()</code>.</p>"
        b"</body></html>"
    )
    routes = {"/guide": Route(page, content_type="text/html; charset=utf-8")}
    with serve(routes) as site:
        url = site.url("/guide")
        out = ok(cli("load", "--tree", "src", url))
        assert site.hits == ["/guide"]  # the client fetched it, once
    assert f"+ {url}" in out and "+ tree:src" in out
    stored = server_context(cli, live_server)
    assert stored[url]["kind"] == "url"
    assert stored[url]["content"] == "API guide\n\n## Usage\n\nCall f()."
    assert stored["tree:src"]["kind"] == "tree"
    assert stored["tree:src"]["content"] == ("src/\n├── pkg/\n│   └── util.py\n└── main.py\n")
    assert "TOP_SECRET_CONTENT" not in json.dumps(stored)
    err = fails(cli("load", "ftp://127.0.0.1/file"))
    assert "only http and https URLs can be loaded" in err
    assert sorted(name for _, name in listing(cli)) == sorted(["tree:src", url])


def test_ls_json_on_an_empty_plan(cli: Cli, tmp_path: Path) -> None:
    ok(cli("new"))
    assert json.loads(ok(cli("ls", "--json"))) == {"items": []}
