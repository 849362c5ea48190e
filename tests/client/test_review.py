"""``apply --review``: the hunk-by-hunk walk, and the command, in process with a fake REST API.

The command runs through the real ``plancast`` parser and a real ``Session`` (``Harness``);
answers come from stdin, one a line, as they do when stdin is not a terminal.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from plancast.client.apply import changeset
from plancast.client.apply.changeset import FileResult, PendingChange, compute
from plancast.client.apply.review import Answer, HunkStep, walk
from plancast.client.cli import build_parser
from plancast.client.ui import keys
from plancast.client.ui.cli_spec import read_parser
from plancast.client.ui.output import Output
from plancast.shared import (
    DeleteFile,
    EditFile,
    FileOp,
    MoveFile,
    PlancastError,
    WriteFile,
    op_to_dict,
)
from tests.client.commands_helpers import PLAN, FakeTerminal, Harness, make_harness

BEFORE = "".join(f"line {n}\n" for n in range(1, 21))
TOP, BOTTOM = "line 2\n", "line 19\n"
AFTER = BEFORE.replace(TOP, "TOP\n").replace(BOTTOM, "BOTTOM\n")  # two hunks, far apart


class ChangesApi:
    """The server's pending changes: ``apply`` and ``reject`` move the changes named by id."""

    def __init__(self, *ops: FileOp) -> None:
        self.pending = [
            {"id": f"chg_{n}", "path": op.path, "op": op_to_dict(op)} for n, op in enumerate(ops)
        ]
        self.applied: list[str] = []
        self.rejected: list[str] = []
        self.kept: dict[str, str] = {}  # reject-hunks: the text of each file sent back

    def get(self, path: str, **params: Any) -> Any:
        assert path == f"/plans/{PLAN}/changes", path
        return {"changes": list(self.pending)}

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        ids = list((body or {})["ids"])
        moved = [c for c in self.pending if c["id"] in ids]
        assert len(moved) == len(ids), "not pending"
        if path == f"/plans/{PLAN}/changes/reject-hunks":  # as server/domain/review.py does
            assert body is not None and {c["path"] for c in moved} == {body["path"]}
            self.kept[body["path"]] = body["content"]
            self.rejected += ids
            at = self.pending.index(moved[0])
            added = {"id": f"chg_kept_{len(self.kept)}", "path": body["path"]}
            added["op"] = op_to_dict(WriteFile(body["path"], body["content"]))
            self.pending.insert(at, added)
            self.pending = [c for c in self.pending if c["id"] not in ids]
            return {"rejected": moved, "added": added, "version": 9}
        self.pending = [c for c in self.pending if c["id"] not in ids]
        if path == f"/plans/{PLAN}/changes/apply":
            self.applied += ids
        else:
            assert path == f"/plans/{PLAN}/changes/reject", path
            self.rejected += ids
        return {"changes": moved}

    def close(self) -> None:
        pass


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return make_harness(tmp_path / "project")


def review(
    h: Harness, monkeypatch: pytest.MonkeyPatch, answers: str, *ops: FileOp
) -> tuple[ChangesApi, int]:
    """Run ``plancast apply --review`` with ``answers`` on stdin: the fake server, the code."""
    api = ChangesApi(*ops)
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    return api, h.run("apply", "--review")


def two_hunks(h: Harness) -> WriteFile:
    h.write("app.py", BEFORE)
    return WriteFile("app.py", AFTER)


# -- the command -----------------------------------------------------------------------------


def test_only_the_hunks_taken_are_written(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, code = review(h, monkeypatch, "y\nn\n", two_hunks(h))
    assert code == 0
    assert (h.root / "app.py").read_text() == BEFORE.replace(TOP, "TOP\n")
    assert api.applied == ["chg_0"] and api.pending == []  # taken in part: marked applied
    out = h.out.getvalue()
    assert "--- a/app.py\n+++ b/app.py\n@@ -1,5 +1,5 @@\n line 1\n-line 2\n+TOP\n" in out
    assert "-line 19\n+BOTTOM\n" in out  # the second hunk was shown too
    assert "updated app.py with 1 of 2 hunks; 1 skipped (its changes are marked applied)" in out
    assert "take hunk 1/2? [y/n/a/d/q]" in h.err.getvalue()


def test_every_hunk_taken_is_the_whole_change(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = review(h, monkeypatch, "y\ny\n", two_hunks(h))
    assert (h.root / "app.py").read_text() == AFTER
    assert api.applied == ["chg_0"]
    assert "  updated app.py\n" in h.out.getvalue()


def test_a_file_with_every_hunk_skipped_is_untouched_and_rejected(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = review(h, monkeypatch, "n\nn\n", two_hunks(h))
    assert (h.root / "app.py").read_text() == BEFORE
    assert api.rejected == ["chg_0"] and api.applied == []
    assert "rejected app.py" in h.out.getvalue()


def test_a_takes_and_d_skips_the_rest_of_the_file(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("b.py", BEFORE)
    ops = (two_hunks(h), WriteFile("b.py", AFTER), WriteFile("new.py", "x = 1\n"))
    api, _ = review(h, monkeypatch, "a\nd\ny\n", *ops)  # one answer per file is enough
    assert (h.root / "app.py").read_text() == AFTER
    assert (h.root / "b.py").read_text() == BEFORE
    assert (h.root / "new.py").read_text() == "x = 1\n"  # a new file is one hunk
    assert api.applied == ["chg_0", "chg_2"] and api.rejected == ["chg_1"]


def test_q_stops_and_leaves_the_rest_pending(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    ops = (two_hunks(h), WriteFile("new.py", "x = 1\n"))
    api, _ = review(h, monkeypatch, "y\nq\n", *ops)
    assert (h.root / "app.py").read_text() == BEFORE.replace(TOP, "TOP\n")
    assert not (h.root / "new.py").exists()  # never reached: not created, still pending
    assert api.applied == ["chg_0"] and api.rejected == []
    assert [c["path"] for c in api.pending] == ["new.py"]
    assert "still pending: new.py" in h.err.getvalue()


def test_the_end_of_the_input_stops_the_review(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = review(h, monkeypatch, "n\n", two_hunks(h))  # one hunk answered, then EOF
    assert (h.root / "app.py").read_text() == BEFORE
    assert api.applied == api.rejected == []  # not every hunk answered: still pending
    assert "nothing applied" in h.out.getvalue()
    assert "still pending: app.py" in h.err.getvalue()


def test_other_answers_are_asked_again(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    review(h, monkeypatch, "maybe\n\nYes\nn\n", two_hunks(h))
    assert (h.root / "app.py").read_text() == BEFORE.replace(TOP, "TOP\n")
    assert h.err.getvalue().count("take hunk 1/2?") == 3


def test_a_new_file_skipped_is_not_created(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = review(h, monkeypatch, "n\n", WriteFile("src/new.py", "a\nb\n"))
    assert not (h.root / "src").exists()
    assert api.rejected == ["chg_0"]
    assert "--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1,2 @@\n+a\n+b\n" in h.out.getvalue()


def test_an_empty_new_file_is_one_hunk(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = review(h, monkeypatch, "y\n", WriteFile("empty.txt", ""))
    assert (h.root / "empty.txt").read_text() == ""
    assert api.applied == ["chg_0"]
    assert "(a new, empty file)" in h.out.getvalue()


def test_edits_are_reviewed_as_the_hunks_of_their_file(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("app.py", BEFORE)
    ops = (EditFile("app.py", TOP, "TOP\n"), EditFile("app.py", BOTTOM, "BOTTOM\n"))
    api, _ = review(h, monkeypatch, "n\ny\n", *ops)
    assert (h.root / "app.py").read_text() == BEFORE.replace(BOTTOM, "BOTTOM\n")
    assert api.applied == ["chg_0", "chg_1"]  # both ops of the file


def test_a_file_whose_edit_fails_is_reported_and_the_others_reviewed(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("bad.py", "x\n")
    ops = (EditFile("bad.py", "nowhere\n", "y\n"), WriteFile("new.py", "n\n"))
    api, code = review(h, monkeypatch, "y\n", *ops)
    assert code == 1
    assert "not reviewed: bad.py" in h.err.getvalue()
    assert "still pending: bad.py" in h.err.getvalue()
    assert api.applied == ["chg_1"] and [c["path"] for c in api.pending] == ["bad.py"]


def test_a_file_changed_during_the_review_is_not_overwritten(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = two_hunks(h)

    class Typing(io.StringIO):
        def readline(self, size: int | None = -1) -> str:  # the user edits while answering
            (h.root / "app.py").write_text(BEFORE + "mine\n")
            return super().readline()

    api = ChangesApi(op)
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", Typing("y\ny\n"))
    assert h.run("apply", "--review") == 1
    assert (h.root / "app.py").read_text() == BEFORE + "mine\n"
    assert api.applied == [] and len(api.pending) == 1
    assert "app.py changed on disk during the review" in h.err.getvalue()


def test_nothing_pending(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    review(h, monkeypatch, "")
    assert h.out.getvalue() == "no pending changes\n"


def test_hunks_are_coloured_at_a_terminal(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h.session.output = Output(h.out, h.err, color=True)
    review(h, monkeypatch, "y\ny\n", two_hunks(h))
    out = h.out.getvalue()
    assert "\x1b[32m+TOP\x1b[0m" in out and "\x1b[31m-line 2\x1b[0m" in out
    assert "\x1b[36m@@ -1,5 +1,5 @@\x1b[0m" in out


def test_an_injected_question_is_used_instead_of_stdin(h: Harness) -> None:
    asked: list[tuple[str, list[str], str]] = []

    def ask_key(question: str, choices: list[Any], *, cancel: str) -> str:
        asked.append((question, [c.key for c in choices], cancel))
        return "y" if len(asked) == 1 else "n"

    api = ChangesApi(two_hunks(h))
    h.session.__dict__["api"] = api
    args = build_parser().parse_args(["apply", "--review"])
    args.ask_key = ask_key  # as the interactive session hands it in
    assert args.func(h.session, args) == 0
    assert asked == [
        ("take hunk 1/2?", ["y", "n", "a", "d", "q"], "q"),
        ("take hunk 2/2?", ["y", "n", "a", "d", "q"], "q"),
    ]
    assert (h.root / "app.py").read_text() == BEFORE.replace(TOP, "TOP\n")


def test_at_a_terminal_each_hunk_is_a_one_key_question(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_pressed = iter("ny")

    def one_key(question: str, choices: list[Any], *, cancel: str) -> str:
        return next(keys_pressed)

    monkeypatch.setattr(keys, "ask", one_key)
    api = ChangesApi(two_hunks(h))
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    assert h.run("apply", "--review") == 0
    assert (h.root / "app.py").read_text() == BEFORE.replace(BOTTOM, "BOTTOM\n")
    assert "[y/n/a/d/q]" not in h.err.getvalue()  # no line question


def test_a_failed_write_puts_every_file_back_and_marks_nothing(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(target: Path, text: str, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(changeset, "_write_atomic", broken)
    with pytest.raises(PlancastError, match="every file was restored"):
        review(h, monkeypatch, "y\ny\n", two_hunks(h))
    assert (h.root / "app.py").read_text() == BEFORE
    assert h.session.api.applied == []  # type: ignore[attr-defined]


def test_review_is_an_option_of_apply_for_every_completion() -> None:
    apply = read_parser(build_parser()).commands["apply"]
    option = apply.option("--review")
    assert option is not None and not option.takes_value and "hunk" in option.help


def moves_and_deletes(h: Harness) -> tuple[FileOp, ...]:
    h.write("lib/util.py", BEFORE)
    h.write("old.txt", "old\n")
    return (
        MoveFile("lib/util.py", "pkg/util.py"),
        EditFile("pkg/util.py", TOP, "TOP\n"),
        DeleteFile("old.txt"),
    )


def test_a_move_and_a_deletion_are_one_question_each(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, code = review(h, monkeypatch, "y\ny\n", *moves_and_deletes(h))
    assert code == 0
    assert not (h.root / "lib" / "util.py").exists() and not (h.root / "old.txt").exists()
    assert (h.root / "pkg" / "util.py").read_text() == BEFORE.replace(TOP, "TOP\n")
    assert api.applied == ["chg_0", "chg_1", "chg_2"]
    err, out = h.err.getvalue(), h.out.getvalue()
    assert "take the change of these 2 files? [y/n/a/d/q]" in err
    assert "take this deletion? [y/n/a/d/q]" in err
    assert "rename from lib/util.py\nrename to pkg/util.py\n" in out
    assert "deleted file mode 100644" in out
    assert "moved lib/util.py → pkg/util.py" in out and "deleted old.txt" in out


def test_a_move_skipped_is_not_half_done(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = review(h, monkeypatch, "n\ny\n", *moves_and_deletes(h))
    assert (h.root / "lib" / "util.py").read_text() == BEFORE  # neither end moved
    assert not (h.root / "pkg").exists()
    assert not (h.root / "old.txt").exists()
    assert api.rejected == ["chg_0", "chg_1"] and api.applied == ["chg_2"]


def test_reject_review_of_a_move_and_a_deletion(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, code = reject_review(h, monkeypatch, "y\nn\n", *moves_and_deletes(h))
    assert code == 0
    assert api.rejected == ["chg_0", "chg_1"] and api.kept == {}
    assert [c["path"] for c in api.pending] == ["old.txt"]
    assert "reject this deletion?" in h.err.getvalue()
    out = h.out.getvalue()
    assert "rejected lib/util.py\n" in out and "rejected pkg/util.py\n" in out


# -- reject --review -------------------------------------------------------------------------


def reject_review(
    h: Harness, monkeypatch: pytest.MonkeyPatch, answers: str, *ops: FileOp
) -> tuple[ChangesApi, int]:
    """Run ``plancast reject --review`` with ``answers`` on stdin: the fake server, the code."""
    api = ChangesApi(*ops)
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    return api, h.run("reject", "--review")


def test_rejected_hunks_leave_the_others_pending_as_one_write(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, code = reject_review(h, monkeypatch, "y\nn\n", two_hunks(h))
    assert code == 0
    assert api.rejected == ["chg_0"]
    # The server got the file with only the second hunk, computed against the disk.
    assert api.kept == {"app.py": BEFORE.replace(BOTTOM, "BOTTOM\n")}
    assert [c["op"]["op"] for c in api.pending] == ["write"]
    assert (h.root / "app.py").read_text() == BEFORE  # rejecting writes nothing
    assert "rejected 1 of 2 hunks of app.py; the other 1 stay pending" in h.out.getvalue()
    assert "reject hunk 1/2? [y/n/a/d/q]" in h.err.getvalue()


def test_what_stays_pending_applies_as_the_hunks_kept(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("app.py", BEFORE)
    ops = (EditFile("app.py", TOP, "TOP\n"), EditFile("app.py", BOTTOM, "BOTTOM\n"))
    api, _ = reject_review(h, monkeypatch, "n\ny\n", *ops)
    assert api.rejected == ["chg_0", "chg_1"]  # both ops of the file, for one write
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert h.run("apply") == 0
    assert (h.root / "app.py").read_text() == BEFORE.replace(TOP, "TOP\n")


def test_every_hunk_rejected_rejects_the_changes(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("b.py", BEFORE)
    ops = (two_hunks(h), WriteFile("b.py", AFTER), WriteFile("new.py", "x = 1\n"))
    api, code = reject_review(h, monkeypatch, "a\nd\ny\n", *ops)
    assert code == 0
    assert api.rejected == ["chg_0", "chg_2"] and api.kept == {}
    assert [c["path"] for c in api.pending] == ["b.py"]  # every hunk kept: untouched
    summary = h.out.getvalue().rsplit("+x = 1\n", 1)[1]  # after the last hunk shown
    assert summary == "  rejected app.py\n  rejected new.py\n"


def test_q_stops_the_reject_review_and_keeps_everything_after(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = reject_review(h, monkeypatch, "n\nq\n", two_hunks(h), WriteFile("n.py", "n\n"))
    assert api.rejected == [] and len(api.pending) == 2
    assert "nothing rejected" in h.out.getvalue()


def test_reject_review_of_named_files_only(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h.write("b.py", BEFORE)
    api = ChangesApi(two_hunks(h), WriteFile("b.py", AFTER))
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\n"))
    assert h.run("reject", "-p", "b.py") == 0
    assert api.rejected == ["chg_1"]
    assert [c["path"] for c in api.pending] == ["app.py"]


def test_a_file_changed_during_the_reject_review_is_left_pending(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = two_hunks(h)

    class Typing(io.StringIO):
        def readline(self, size: int | None = -1) -> str:  # the user edits while answering
            (h.root / "app.py").write_text(BEFORE + "mine\n")
            return super().readline()

    api = ChangesApi(op)
    h.session.__dict__["api"] = api
    monkeypatch.setattr(sys, "stdin", Typing("y\nn\n"))
    assert h.run("reject", "--review") == 1
    assert api.rejected == [] and api.kept == {}
    assert "app.py changed on disk during the review" in h.err.getvalue()


def test_reject_review_asks_with_the_sessions_question(h: Harness) -> None:
    asked: list[tuple[str, list[str]]] = []

    def ask_key(question: str, choices: list[Any], *, cancel: str) -> str:
        asked.append((question, [c.label for c in choices]))
        return "n" if len(asked) == 1 else "y"

    api = ChangesApi(two_hunks(h))
    h.session.__dict__["api"] = api
    args = build_parser().parse_args(["reject", "--review"])
    args.ask_key = ask_key  # as the interactive session hands it in
    assert args.func(h.session, args) == 0
    labels = ["reject", "keep", "reject the rest", "keep the rest", "quit"]
    assert asked == [("reject hunk 1/2?", labels), ("reject hunk 2/2?", labels)]
    assert api.kept == {"app.py": BEFORE.replace(TOP, "TOP\n")}


def test_kept_text_is_the_file_without_the_hunks_taken(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BEFORE)
    _, ask = scripted("ny")
    (reviewed,) = walk(results(tmp_path, WriteFile("a.py", AFTER)), ask)
    assert reviewed.kept_text() == BEFORE.replace(TOP, "TOP\n")
    assert reviewed.to_write()[0].new == BEFORE.replace(BOTTOM, "BOTTOM\n")


# -- the walk --------------------------------------------------------------------------------


def results(tmp_path: Path, *ops: WriteFile) -> list[FileResult]:
    return compute(tmp_path, [PendingChange(f"c{n}", op.path, op) for n, op in enumerate(ops)])


def scripted(answers: str) -> tuple[list[HunkStep], Any]:
    steps: list[HunkStep] = []
    script = iter(answers)

    def ask(step: HunkStep) -> Answer:
        steps.append(step)
        return next(script)  # type: ignore[return-value]

    return steps, ask


def test_the_walk_asks_about_each_hunk_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BEFORE)
    found = results(tmp_path, WriteFile("a.py", AFTER), WriteFile("b.py", "b\n"))
    steps, ask = scripted("nyy")
    reviews = walk(found, ask)
    assert [(s.path, s.number, s.hunks, s.file_number, s.files) for s in steps] == [
        ("a.py", 1, 2, 1, 2),
        ("a.py", 2, 2, 1, 2),
        ("b.py", 1, 1, 2, 2),
    ]
    assert [r.status for r in reviews] == ["partial", "applied"]
    assert reviews[0].to_write()[0].new == BEFORE.replace(BOTTOM, "BOTTOM\n")
    assert reviews[0].skipped == 1


@pytest.mark.parametrize(
    ("answers", "statuses"),
    [
        ("a", ["applied", "pending"]),  # (then the script ends: q)
        ("dn", ["rejected", "rejected"]),
        ("nq", ["pending", "pending"]),
        ("q", ["pending", "pending"]),
        ("yq", ["partial", "pending"]),
        ("nny", ["rejected", "applied"]),
    ],
)
def test_the_status_each_answer_leaves(tmp_path: Path, answers: str, statuses: list[str]) -> None:
    (tmp_path / "a.py").write_text(BEFORE)
    found = results(tmp_path, WriteFile("a.py", AFTER), WriteFile("b.py", "b\n"))
    _, ask = scripted(answers + "q" * 3)
    assert [r.status for r in walk(found, ask)] == statuses


def test_a_file_whose_ops_change_nothing_is_applied_without_a_question(tmp_path: Path) -> None:
    (tmp_path / "same.py").write_text("x\n")
    steps, ask = scripted("")
    (reviewed,) = walk(results(tmp_path, WriteFile("same.py", "x\n")), ask)
    assert steps == [] and reviewed.status == "applied"


def test_a_wrong_answer_is_a_bug_of_the_caller(tmp_path: Path) -> None:
    _, ask = scripted("?")
    with pytest.raises(ValueError, match="not an answer"):
        walk(results(tmp_path, WriteFile("n.py", "n\n")), ask)
