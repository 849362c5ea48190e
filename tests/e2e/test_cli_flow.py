"""A user's session, end to end: the real server process, the real CLI, files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, LiveServer, free_port
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

APP = "import os\n\nx = 1\nprint(x)\n"

REPLY = """I'll add a greeting module and bump x.

<pc:file path="greet.py">
def greet(name):
    return f"hello {name}"
</pc:file>

<pc:edit path="app.py">
<pc:find>
x = 1
</pc:find>
<pc:replace>
x = 2
</pc:replace>
</pc:edit>

That is all.
"""


def _project(cli: Cli) -> Path:
    (cli.project / "app.py").write_text(APP)
    (cli.project / ".gitignore").write_text("build/\n*.log\n")
    (cli.project / "build").mkdir()
    (cli.project / "build" / "out.txt").write_text("generated\n")
    (cli.project / "debug.log").write_text("noise\n")
    (cli.project / ".env").write_text("TOKEN=do-not-send\n")
    (cli.project / "sub").mkdir()
    (cli.project / "sub" / ".plancastignore").write_text("private.md\n")
    (cli.project / "sub" / "private.md").write_text("mine\n")
    (cli.project / "sub" / "notes.md").write_text("shareable\n")
    return cli.project


def ok(result: object) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined,no-any-return]


def test_new_load_tell_diff_apply(cli: Cli, emulator: Emulator, api_key: str) -> None:
    project = _project(cli)
    ok(cli("new", "-n", "first"))
    assert json.loads((project / ".plancast" / "project.json").read_text())["plan_id"]

    dry = ok(cli("load", "--dry-run", "-r", ".")).splitlines()
    assert dry == [".gitignore", "app.py", "sub/.plancastignore", "sub/notes.md"]

    out = ok(cli("load", "-r", "."))
    assert "loaded 4 new" in out
    assert "app.py" in ok(cli("ls"))

    emulator.push(Reply(text=REPLY, chunk_chars=7))
    told = ok(cli("tell", "add a greeting and bump x"))
    assert "I'll add a greeting module" in told
    assert "2 pending change(s) to 2 file(s)" in told

    # The model saw the loaded context, and the key the client sent.
    request = emulator.last_request
    assert request.api_key == api_key
    sent = json.dumps(request.body)
    assert "x = 1" in sent and "shareable" in sent
    assert "do-not-send" not in sent and "generated" not in sent and "mine" not in sent

    diff = ok(cli("diff"))
    assert "--- /dev/null" in diff and "+++ b/greet.py" in diff
    assert "-x = 1" in diff and "+x = 2" in diff
    assert (project / "app.py").read_text() == APP  # diff writes nothing

    ok(cli("apply"))
    assert (project / "app.py").read_text() == APP.replace("x = 1", "x = 2")
    assert (project / "greet.py").read_text() == 'def greet(name):\n    return f"hello {name}"\n'
    assert "no pending changes" in ok(cli("diff"))

    current = ok(cli("current"))
    assert "first" in current and "0 pending change(s)" in current
    convo = ok(cli("convo"))
    assert "add a greeting and bump x" in convo and "That is all." in convo


def test_reject_drops_changes_and_leaves_files(cli: Cli, emulator: Emulator) -> None:
    project = _project(cli)
    ok(cli("new"))
    emulator.push(Reply(text=REPLY))
    ok(cli("tell", "change things"))
    ok(cli("reject", "greet.py"))
    diff = ok(cli("diff"))
    assert "greet.py" not in diff and "+x = 2" in diff
    ok(cli("reject"))
    assert "no pending changes" in ok(cli("diff"))
    assert (project / "app.py").read_text() == APP
    assert not (project / "greet.py").exists()


def test_edit_whose_anchor_is_missing_is_reported_not_applied(cli: Cli, emulator: Emulator) -> None:
    project = _project(cli)
    ok(cli("new"))
    reply = REPLY.replace("x = 1\n</pc:find>", "y = 99\n</pc:find>")
    emulator.push(Reply(text=reply))
    ok(cli("tell", "change things"))
    result = cli("apply")
    assert result.returncode == 1
    assert "not applied: app.py" in result.stderr and "still pending" in result.stderr
    assert (project / "app.py").read_text() == APP  # untouched
    assert (project / "greet.py").exists()  # the file that could land did
    diff = cli("diff")
    assert diff.returncode == 1
    assert "app.py" in diff.stderr and "y = 99" in diff.stderr


def test_paths_outside_the_project_are_refused(cli: Cli, emulator: Emulator) -> None:
    _project(cli)
    ok(cli("new"))
    evil = (
        '<pc:file path="../escaped.py">\nboom\n</pc:file>\n'
        '<pc:file path="/tmp/abs.py">\nboom\n</pc:file>\n'
        '<pc:file path=".git/hooks/pre-commit">\nboom\n</pc:file>\n'
        '<pc:file path="fine.py">\nok\n</pc:file>\n'
    )
    emulator.push(Reply(text=evil))
    told = cli("tell", "try to escape")
    assert told.returncode == 0
    assert told.stderr.count("warning:") == 3
    ok(cli("apply"))
    assert (cli.project / "fine.py").read_text() == "ok\n"
    assert not (cli.project.parent / "escaped.py").exists()
    assert not (cli.project / ".git").exists()


def test_symlink_leading_out_is_refused(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    _project(cli)
    outside = tmp_path / "outside"
    outside.mkdir()
    (cli.project / "link").symlink_to(outside, target_is_directory=True)
    ok(cli("new"))
    emulator.push(Reply(text='<pc:file path="link/pwned.py">\nboom\n</pc:file>\n'))
    ok(cli("tell", "write through the link"))
    result = cli("apply")
    assert result.returncode == 1
    assert "outside the project" in result.stderr
    assert not (outside / "pwned.py").exists()


def test_provider_failure_mid_stream_keeps_the_partial_reply(cli: Cli, emulator: Emulator) -> None:
    _project(cli)
    ok(cli("new"))
    emulator.push(Reply(text="First part of the plan. " * 20, chunk_chars=10, cut_after=4))
    result = cli("tell", "go")
    assert result.returncode == 1
    assert "connection" in result.stderr.lower() and "continue" in result.stderr
    convo = ok(cli("convo"))
    assert "First part of the plan." in convo and "[partial]" in convo

    emulator.push(Reply(text="The rest of the plan."))
    ok(cli("continue"))
    assert "The rest of the plan." in ok(cli("convo"))


def test_missing_key_stops_before_any_work(cli: Cli, emulator: Emulator) -> None:
    _project(cli)
    ok(cli("new"))
    result = cli("tell", "go", env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    assert result.returncode == 1
    assert "OPENAI_API_KEY" in result.stderr
    assert emulator.requests == []
    assert "no conversation yet" in ok(cli("convo"))

    result = cli("tell", "go", env={"PLANCAST_MODEL": "anthropic/claude-sonnet-4-5"})
    assert result.returncode == 1 and "ANTHROPIC_API_KEY" in result.stderr


def test_unknown_plan_is_a_clear_error(cli: Cli) -> None:
    _project(cli)
    ok(cli("new"))
    binding = cli.project / ".plancast" / "project.json"
    data = json.loads(binding.read_text())
    binding.write_text(json.dumps(data | {"plan_id": "pl_doesnotexist"}))
    result = cli("current")
    assert result.returncode == 1
    assert "no plan 'pl_doesnotexist'" in result.stderr
    assert "plancast plans" in result.stderr


def test_server_not_running_says_how_to_start_it(cli: Cli) -> None:
    _project(cli)
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("new", env={"PLANCAST_SERVER": url})
    assert result.returncode == 1
    assert f"cannot reach the plancast server at {url}" in result.stderr
    assert "plancast-server" in result.stderr


def test_load_note_and_stdin(cli: Cli) -> None:
    _project(cli)
    ok(cli("new"))
    ok(cli("load", "-n", "prefer small functions"))
    ok(cli("load", "-", input="piped text\n"))
    listing = ok(cli("ls"))
    assert "note" in listing and "stdin" in listing
    ok(cli("rm", "stdin"))
    assert "stdin" not in ok(cli("ls"))
    ok(cli("clear"))
    assert "context is empty" in ok(cli("ls"))


def test_dry_run_needs_no_server(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "src").mkdir(parents=True)
    (project / "src" / "a.py").write_text("a\n")
    (project / "src" / "b.pyc").write_text("b\n")
    (project / ".gitignore").write_text("*.pyc\n")
    result = Cli(project)(
        "load", "--dry-run", "-r", "src", env={"PLANCAST_SERVER": f"http://127.0.0.1:{free_port()}"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["src/a.py"]


def test_plans_and_cd(cli: Cli) -> None:
    _project(cli)
    ok(cli("new", "-n", "alpha"))
    ok(cli("new", "-n", "beta"))
    listing = ok(cli("plans"))
    assert "* " in listing and "beta" in listing and "alpha" in listing
    ok(cli("cd", "alpha"))
    assert "alpha" in ok(cli("current"))
    ok(cli("cd", "2"))
    assert "beta" in ok(cli("current"))
    assert cli("cd", "gamma").returncode == 1


def test_key_is_nowhere_on_disk_after_the_stream(
    cli: Cli, emulator: Emulator, api_key: str, live_server: LiveServer
) -> None:
    _project(cli)
    ok(cli("new"))
    emulator.push(Reply(text=REPLY))
    ok(cli("tell", "go"))
    assert emulator.last_request.api_key == api_key  # not vacuous: the key did travel
    live_server.stop()  # flushes the WAL and the log
    needles = [api_key.encode(), api_key.encode("utf-16-le")]
    for path in [*live_server.data_dir.rglob("*"), live_server.log, *cli.project.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"key found in {path}"
