"""log, rewind (and its undo, with the files on disk), branches, checkout, delete-branch and the
plan's lifecycle, in process: the real ``plancast`` parser, a real ``Session`` and ``RestClient``,
and the real app behind it (Starlette's test client as the HTTP transport), so that the branch
each request carries is the one the server acts on.

Pending changes are proposed straight into the app's database (a stream is not the point
here); ``tests/e2e/test_history_flow.py`` runs the same flows with real streams and processes.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from plancast.client.api.rest import RestClient
from plancast.client.apply import journal
from plancast.client.cli import build_parser
from plancast.client.commands import streams
from plancast.client.config import ClientConfig
from plancast.client.project import ProjectBinding, load_binding
from plancast.client.session import Session
from plancast.client.ui.output import Output
from plancast.server.domain import changes, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.shared import PlancastError, WriteFile
from tests.client.commands_helpers import FakeTerminal
from tests.server.helpers import Server, load_settings, running


@dataclass
class Live:
    """A project folder bound to a plan of the in-process server, and a session on it."""

    root: Path
    server: Server
    session: Session
    out: io.StringIO
    err: io.StringIO
    project_id: str
    plan_id: str

    def run(self, *argv: str) -> int:
        self.out.seek(0), self.out.truncate()
        self.err.seek(0), self.err.truncate()
        self.session.forget_binding()  # as a new process would read it
        args: argparse.Namespace = build_parser().parse_args(list(argv))
        return int(args.func(self.session, args))

    def fails(self, *argv: str) -> str:
        with pytest.raises(PlancastError) as caught:
            self.run(*argv)
        return caught.value.message

    def propose(self, *writes: tuple[str, str], branch: str = "main") -> list[str]:
        """Pending ``write`` changes on the branch, as a finished reply would leave them."""
        ops = [WriteFile(path, text) for path, text in writes]

        async def insert() -> list[str]:
            async with self.server.app.state.db.begin() as conn:
                ids = await changes.insert_changes(conn, LOCAL_ORG_ID, self.plan_id, None, ops)
                await versions.commit(
                    conn,
                    LOCAL_ORG_ID,
                    self.plan_id,
                    branch,
                    "reply",
                    "proposed",
                    lambda s: replace(s, changes=s.changes + tuple((i, "pending") for i in ids)),
                )
                return ids

        portal = self.server.client.portal
        assert portal is not None
        return portal.call(insert)

    def head(self, branch: str = "main") -> int:
        url = f"/api/v1/plans/{self.plan_id}/versions?branch={branch}"
        return int(self.server.ok("GET", url)["head"]["number"])

    def file(self, name: str) -> str | None:
        path = self.root / name
        return path.read_text() if path.exists() else None


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with running(load_settings(data)) as server:
        project_id = server.new_project()
        plan_id = server.new_plan(project_id, "first")
        root = tmp_path / "project"
        root.mkdir()
        ProjectBinding(root, project_id, plan_id).save()
        out, err = io.StringIO(), io.StringIO()
        session = Session(Output(out, err, color=False), cwd=root)
        token = server.auth["Authorization"].split()[1]
        api = RestClient(ClientConfig("http://127.0.0.1", token), branch_for=session._branch_for)
        api._http.close()
        server.client.headers.update(server.auth)
        api._http = server.client  # the app in process; a TestClient is an httpx.Client
        session.__dict__["api"] = api
        yield Live(root, server, session, out, err, project_id, plan_id)


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal(text))


def applied(live: Live, *writes: tuple[str, str]) -> int:
    """Propose the writes, `plancast apply` them; returns the version before the apply."""
    live.propose(*writes)
    before = live.head(live.session.branch)
    assert live.run("apply") == 0
    return before


# -- log --------------------------------------------------------------------------------------


def test_log_lists_the_branch_newest_first_and_all_shows_what_a_rewind_left(
    live: Live, no_terminal: None
) -> None:
    live.propose(("a.py", "a\n"))  # 2
    live.propose(("b.py", "b\n"))  # 3
    assert live.run("log") == 0
    lines = live.out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["*", "3", "reply"],
        ["2", "reply", "proposed"],
        ["1", "create", "plan"],
    ]
    assert "[main]" in lines[0] and "ago" in lines[0]
    assert "branch main · at version 3" in live.err.getvalue()

    live.run("rewind", "2")
    live.run("checkout", "-b", "side")
    live.run("log", "--all")
    lines = live.out.getvalue().splitlines()
    assert lines[0].startswith("·    3") and lines[0].endswith("(on no branch)")
    assert lines[1].startswith("*    2") and lines[1].endswith("[main, side]")
    assert "left by a rewind" in live.err.getvalue()

    live.run("log", "--all", "--json")
    data = json.loads(live.out.getvalue())
    assert (data["branch"], data["head"]["number"]) == ("side", 2)
    assert [(v["number"], v["on_branch"], v["heads"]) for v in data["versions"]] == [
        (1, True, []),
        (2, True, ["main", "side"]),
        (3, False, []),
    ]


# -- rewind, the files on disk, undo --------------------------------------------------------


def test_rewind_reverts_applied_files_and_skips_a_conflict(live: Live, no_terminal: None) -> None:
    (live.root / "app.py").write_text("x = 1\n")
    (live.root / "mine.py").write_text("mine\n")
    before = applied(live, ("app.py", "x = 2\n"), ("new.py", "new\n"), ("mine.py", "theirs\n"))
    (live.root / "mine.py").write_text("theirs\nplus my edit\n")  # changed since the apply

    assert live.run("rewind", str(before), "--revert") == 1  # one file could not be restored
    assert live.head() == before
    assert live.file("app.py") == "x = 1\n"
    assert live.file("new.py") is None  # it was created by the apply: removed
    assert live.file("mine.py") == "theirs\nplus my edit\n"  # never clobbered
    out, err = live.out.getvalue(), live.err.getvalue()
    assert "reverted app.py" in out and "removed new.py" in out
    assert "not restored: mine.py" in err and "changed on disk" in err
    assert "`plancast rewind --undo`" in err


def test_undo_reapplies_what_the_rewind_reverted(live: Live, no_terminal: None) -> None:
    (live.root / "app.py").write_text("x = 1\n")
    before = applied(live, ("app.py", "x = 2\n"), ("new.py", "new\n"))
    after = live.head()
    assert live.run("rewind", str(before), "--revert") == 0
    assert (live.file("app.py"), live.file("new.py")) == ("x = 1\n", None)
    assert live.run("rewind", "--undo", "--revert") == 0
    assert live.head() == after
    assert (live.file("app.py"), live.file("new.py")) == ("x = 2\n", "new\n")
    assert "re-applied app.py" in live.out.getvalue()
    assert "undid the last rewind" in live.out.getvalue()


def test_at_a_terminal_rewind_asks_and_no_keeps_the_files(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    (live.root / "app.py").write_text("x = 1\n")
    before = applied(live, ("app.py", "x = 2\n"))
    answer(monkeypatch, "n\n")
    assert live.run("rewind", str(before)) == 0
    assert live.file("app.py") == "x = 2\n"
    assert "revert 1 file(s) to match version" in live.err.getvalue()
    assert "left as they are" in live.err.getvalue()
    answer(monkeypatch, "y\n")
    assert live.run("rewind", "--undo") == 0  # back where the apply left it: nothing to do
    assert live.run("rewind", str(before)) == 0
    assert live.file("app.py") == "x = 1\n"


def test_without_a_terminal_or_a_flag_the_files_stay_and_it_says_how(
    live: Live, no_terminal: None
) -> None:
    (live.root / "app.py").write_text("x = 1\n")
    before = applied(live, ("app.py", "x = 2\n"))
    assert live.run("rewind", str(before)) == 0
    assert live.head() == before  # the rewind itself is done
    assert live.file("app.py") == "x = 2\n"
    err = live.err.getvalue()
    assert "no terminal to ask" in err and "--revert" in err
    # Following the advice brings the files along.
    assert live.run("rewind", "--undo", "--no-revert") == 0
    assert live.run("rewind", str(before), "--revert") == 0
    assert live.file("app.py") == "x = 1\n"


def test_rewind_needs_a_version_or_undo_and_refuses_unknown_ones(
    live: Live, no_terminal: None
) -> None:
    assert "--undo" in live.fails("rewind")
    assert "--undo" in live.fails("rewind", "1", "--undo")
    assert "no version '9'" in live.fails("rewind", "9")
    assert "already at version 1" in live.fails("rewind", "1")
    assert "no rewind to undo" in live.fails("rewind", "--undo")


def test_files_applied_elsewhere_are_left_alone(live: Live, no_terminal: None) -> None:
    (live.root / "app.py").write_text("x = 1\n")
    before = applied(live, ("app.py", "x = 2\n"))
    for record in journal.journal_dir(live.project_id).iterdir():
        record.unlink()  # as if applied on another machine
    assert live.run("rewind", str(before), "--revert") == 0
    assert live.file("app.py") == "x = 2\n"
    assert "no record of its change" in live.err.getvalue()


# -- branches -------------------------------------------------------------------------------


def test_checkout_b_branches_list_and_changes_stay_on_their_branch(
    live: Live, no_terminal: None
) -> None:
    live.propose(("base.py", "base\n"))  # 2, on main
    assert live.run("checkout", "-b", "feature") == 0
    assert "created branch feature at version 2 (from main)" in live.out.getvalue()
    assert load_binding(live.root).branch_for(live.plan_id) == "feature"
    live.propose(("only-on-feature.py", "f\n"), branch="feature")

    live.run("branches")
    assert live.out.getvalue().splitlines() == ["  main     version 2", "* feature  version 3"]
    live.run("diff")
    assert "only-on-feature.py" in live.out.getvalue()
    live.run("current")
    assert "branch feature" in live.out.getvalue()

    assert live.run("checkout", "main") == 0
    assert "switched to branch main (version 2)" in live.out.getvalue()
    live.run("diff")
    assert "only-on-feature.py" not in live.out.getvalue() and "base.py" in live.out.getvalue()
    live.run("apply")
    assert live.file("base.py") == "base\n" and live.file("only-on-feature.py") is None
    on_feature = live.server.ok("GET", f"/api/v1/plans/{live.plan_id}/changes?branch=feature")
    assert [c["path"] for c in on_feature["changes"]] == ["base.py", "only-on-feature.py"]
    # ... still pending there: it was applied on main only.


def test_a_stream_starts_on_the_current_branch(
    live: Live, no_terminal: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANCAST_MODEL", "openai/gpt-4.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    sent: list[dict[str, Any]] = []

    class Sent(Exception):
        pass

    def start(session: Session, fields: dict[str, Any], credentials: Any) -> Any:
        sent.append(fields)
        raise Sent

    monkeypatch.setattr(streams, "_start", start)
    live.run("checkout", "-b", "feature")
    with pytest.raises(Sent):
        live.run("tell", "do it")
    assert sent[0]["branch"] == "feature" and sent[0]["plan_id"] == live.plan_id


def test_delete_branch_and_its_refusals(live: Live, no_terminal: None) -> None:
    live.run("checkout", "-b", "feature")
    assert "is the current one" in live.fails("delete-branch", "feature")
    live.run("checkout", "main")
    assert "cannot be deleted" in live.fails("delete-branch", "main")
    assert "no branch 'nope'" in live.fails("delete-branch", "nope")
    for bad in ("_x", "a/b", "x" * 65, "a b"):
        assert "bad branch name" in live.fails("checkout", "-b", bad)
    assert "bad branch name" in live.fails("delete-branch", "../main")
    assert "checkout -b ghost" in live.fails("checkout", "ghost")
    assert live.run("delete-branch", "feature") == 0
    assert "its versions stay" in live.out.getvalue()
    live.run("branches")
    assert live.out.getvalue().splitlines() == ["* main  version 1"]


def test_a_busy_branch_names_its_stream(live: Live, no_terminal: None) -> None:
    live.run("checkout", "-b", "feature")
    live.run("checkout", "main")
    live.propose(("a.py", "a\n"))

    async def run_on_feature() -> None:
        from plancast.server.streams import records

        async with live.server.app.state.db.begin() as conn:
            await records.insert_running(
                conn,
                stream_id="st_busy",
                org_id=LOCAL_ORG_ID,
                plan_id=live.plan_id,
                branch="feature",
                mode="tell",
                model="openai/gpt-4.1",
                request_id="req_busy",
                owner="test",
            )

    portal = live.server.client.portal
    assert portal is not None
    portal.call(run_on_feature)
    live.run("branches")
    assert "stream st_busy running" in live.out.getvalue()
    assert "st_busy" in live.fails("delete-branch", "feature")
    live.run("checkout", "feature")
    assert "st_busy" in live.fails("rewind", "1")
    assert "st_busy" in live.fails("delete-plan", "--yes")


# -- the plan's lifecycle -------------------------------------------------------------------


def test_rename_archive_unarchive(live: Live, no_terminal: None) -> None:
    assert live.run("rename", "checkout flow") == 0
    live.run("current")
    assert live.out.getvalue().startswith("checkout flow (")
    live.server.ok("POST", f"/api/v1/projects/{live.project_id}/plans", {"name": "second"})
    assert "already has a plan named 'second'" in live.fails("rename", "second")

    assert live.run("archive") == 0
    live.run("plans")
    listed = live.out.getvalue().splitlines()
    assert len(listed) == 1 and "second" in listed[0] and listed[0].split()[0] == "1"
    live.run("plans", "--archived")
    assert "checkout flow" in live.out.getvalue() and "(archived)" in live.out.getvalue()
    live.run("current")
    assert "archived" in live.out.getvalue()  # still readable
    live.run("cd", "1")
    assert "second" in live.out.getvalue()
    live.run("cd", "checkout flow")  # by name, archived or not
    assert live.run("unarchive", "checkout flow") == 0
    live.run("plans", "--json")
    assert [p["name"] for p in json.loads(live.out.getvalue())] == ["checkout flow", "second"]


def test_delete_plan_asks_and_drops_everything_of_it(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    (live.root / "app.py").write_text("x = 1\n")
    applied(live, ("app.py", "x = 2\n"))
    live.run("checkout", "-b", "feature")
    assert list(journal.journal_dir(live.project_id).iterdir())  # the apply was recorded
    assert "pass --yes" in live.fails("delete-plan")
    answer(monkeypatch, "n\n")
    assert live.run("delete-plan") == 1
    assert live.server.get(f"/api/v1/plans/{live.plan_id}").status_code == 200
    answer(monkeypatch, "y\n")
    assert live.run("delete-plan", "first") == 0
    assert live.server.get(f"/api/v1/plans/{live.plan_id}").status_code == 404
    binding = load_binding(live.root)
    assert (binding.plan_id, binding.branches) == (None, {})
    assert list(journal.journal_dir(live.project_id).iterdir()) == []
    assert live.file("app.py") == "x = 2\n"  # the user's files are theirs
    assert "no current plan" in live.err.getvalue()
