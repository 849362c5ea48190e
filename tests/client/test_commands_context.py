"""``load``, ``update``, ``ls --json`` and the stale check, in process, with a fake REST API."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from plancast.client.commands._upload import _batches
from plancast.client.commands.context import warn_if_stale
from plancast.shared import PlancastError
from tests.client.commands_helpers import FakeTerminal, Harness, make_harness
from tests.client.loopback_http import Route, serve


def github_token() -> str:
    """Fabricated at run time: no key-shaped literal in the repository."""
    return "gh" + "p_" + "Zq8Lm2Xw4Tn7Bv9Kc3Rd" + "Hy6Jf1Gp5Ns0QaWx"


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal, nothing piped
    return make_harness(tmp_path / "project")


# --- the secret guard ----------------------------------------------------------------------


def test_a_file_with_a_secret_is_held_back_and_named_without_the_secret(h: Harness) -> None:
    key = github_token()
    h.write("app.py", "print('hi')\n")
    h.write("conf.py", f"DEBUG = True\nTOKEN = '{key}'\n")
    assert h.run("load", "app.py", "conf.py") == 1
    assert h.api.names() == ["app.py"]
    err = h.err.getvalue()
    assert "secret: conf.py:2: github-token ghp_… (40 chars)" in err
    assert "held back 1 item(s) with secrets (not uploaded): conf.py" in err
    assert "--redact-secrets" in err
    assert key not in err + h.out.getvalue() and key[4:14] not in err
    assert "loaded 1 new" in h.out.getvalue()


def test_redact_secrets_uploads_the_file_with_the_value_replaced(h: Harness) -> None:
    key = github_token()
    h.write("conf.py", f"TOKEN = '{key}'\n")
    assert h.run("load", "--redact-secrets", "conf.py") == 0
    assert h.api.content("conf.py") == "TOKEN = '[REDACTED:github-token]'\n"
    assert "redacted 1 secret(s) before upload" in h.err.getvalue()


def test_allow_secrets_uploads_the_file_as_is(h: Harness) -> None:
    key = github_token()
    h.write("conf.py", f"TOKEN = '{key}'\n")
    assert h.run("load", "--allow-secrets", "conf.py") == 0
    assert key in h.api.content("conf.py")
    assert "as they are (--allow-secrets)" in h.err.getvalue()


def test_redact_and_allow_exclude_each_other(h: Harness) -> None:
    with pytest.raises(SystemExit):
        h.run("load", "--redact-secrets", "--allow-secrets", "x")


def test_secrets_in_piped_stdin_are_held_back_too(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"export GH={github_token()}\n"))
    assert h.run("load", "-") == 1
    assert h.api.names() == [] and h.api.uploads() == 0
    assert "secret: stdin:1: github-token" in h.err.getvalue()
    assert "nothing was loaded" in h.err.getvalue()


# --- the manifest and the question ---------------------------------------------------------


def test_the_manifest_names_files_bytes_tokens_and_the_plan_s_model(h: Harness) -> None:
    h.write("a.py", "a" * 400)
    h.write("b.py", "b" * 4)
    assert h.run("load", "a.py", "b.py", "-n", "remember this") == 0
    err = h.err.getvalue()
    assert "to send: 2 files, 1 other item · 417 bytes · ~105 tokens" in err
    assert "under $0.01 per request to openai/gpt-4.1" in err


def test_the_manifest_falls_back_to_the_model_tell_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(tmp_path / "p", model=None)
    h.write("a.py", "x\n")
    assert h.run("load", "a.py") == 0
    assert "cost unknown (no model chosen)" in h.err.getvalue()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("PLANCAST_MODEL", "anthropic/claude-sonnet-4")
    h.write("b.py", "y\n")
    assert h.run("load", "b.py") == 0
    assert "per request to anthropic/claude-sonnet-4" in h.err.getvalue()


def test_above_the_threshold_without_a_terminal_nothing_is_sent(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "10")
    h.write("big.py", "x" * 400)
    with pytest.raises(PlancastError, match=r"above PLANCAST_CONFIRM_TOKENS \(10\).*pass --yes"):
        h.run("load", "big.py")
    assert h.api.uploads() == 0


def test_above_the_threshold_on_a_terminal_the_user_decides(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "10")
    h.write("big.py", "x" * 400)
    monkeypatch.setattr(sys, "stdin", FakeTerminal("n\n"))
    assert h.run("load", "big.py") == 1
    assert h.api.uploads() == 0 and "cancelled; nothing was sent" in h.err.getvalue()
    assert "~100 tokens is above PLANCAST_CONFIRM_TOKENS (10); upload? [y/N]" in h.err.getvalue()
    monkeypatch.setattr(sys, "stdin", FakeTerminal("y\n"))
    assert h.run("load", "big.py") == 0
    assert h.api.names() == ["big.py"]


def test_yes_skips_the_question(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "0")
    h.write("a.py", "x" * 40)
    assert h.run("load", "--yes", "a.py") == 0
    assert h.api.names() == ["a.py"]


def test_a_bad_threshold_fails_loudly_before_any_upload(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "many")
    h.write("a.py", "x")
    with pytest.raises(PlancastError, match="must be a whole number"):
        h.run("load", "a.py")
    assert h.api.uploads() == 0


def test_a_large_load_draws_progress_only_on_a_terminal(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plancast.client.commands import _upload

    for i in range(600):
        h.write(f"pkg/m{i}.py", f"x = {i}\n")
    monkeypatch.setattr(_upload, "MAX_BATCH_BYTES", 4096)  # several requests
    assert h.run("load", "-r", "pkg") == 0
    assert len(h.api.names()) == 600 and h.api.uploads() > 1
    assert "uploading" not in h.err.getvalue()  # stderr is not a terminal: no bar
    terminal = FakeTerminal()
    h.session.output.err = terminal
    for i in range(600):
        h.write(f"pkg/m{i}.py", f"x = {i + 1}\n")
    assert h.run("load", "-r", "pkg") == 0
    drawn = terminal.getvalue()
    assert "scanning" in drawn and "reading" in drawn and "uploading" in drawn


def test_batches_keep_order_and_size() -> None:
    items = [{"kind": "file", "name": f"f{i}", "content": "x" * 3000} for i in range(10)]
    from plancast.client.commands import _upload

    old = _upload.MAX_BATCH_BYTES
    _upload.MAX_BATCH_BYTES = 10_000
    try:
        batches = _batches(items)
    finally:
        _upload.MAX_BATCH_BYTES = old
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [i["name"] for b in batches for i in b] == [f"f{i}" for i in range(10)]


# --- trees and URLs --------------------------------------------------------------------------


def test_load_tree_sends_names_only_of_loadable_files(h: Harness) -> None:
    h.write("src/app.py", "SECRET_CONTENT = 1\n")
    h.write("src/pkg/util.py", "")
    h.write("src/.env", "KEY=1\n")
    h.write("src/logo.png", "\x89PNG\x00")
    h.write(".gitignore", "*.log\n")
    h.write("src/debug.log", "noise\n")
    assert h.run("load", "--tree", "src") == 0
    assert h.api.names() == ["tree:src"]
    assert h.api.content("tree:src") == (
        "src/\n├── pkg/\n│   └── util.py\n├── app.py\n└── logo.png\n"
    )
    assert h.api.items[0]["kind"] == "tree"


def test_reloading_a_tree_replaces_it_and_leaves_files_alone(h: Harness) -> None:
    h.write("src/a.py", "a\n")
    assert h.run("load", "-r", "src", "--tree", "src") == 0
    assert h.api.names() == ["src/a.py", "tree:src"]
    assert h.run("load", "--tree", "src") == 0
    assert "0 new, 0 updated, 1 unchanged" in h.out.getvalue()
    h.write("src/b.py", "b\n")
    assert h.run("load", "--tree", "src") == 0
    assert h.api.names() == ["src/a.py", "tree:src"]  # one tree, the file still there
    assert "b.py" in h.api.content("tree:src")
    assert "0 new, 1 updated" in h.out.getvalue()


def test_tree_of_the_root_and_bad_trees(h: Harness) -> None:
    h.write("a.py", "")
    assert h.run("load", "--tree", ".") == 0
    assert h.api.content("tree:.").startswith(".\n")
    assert ".plancast" not in h.api.content("tree:.")
    with pytest.raises(PlancastError, match="not a folder"):
        h.run("load", "--tree", "a.py")
    with pytest.raises(PlancastError, match="outside the project"):
        h.run("load", "--tree", "..")


def test_load_url_uploads_the_page_text_named_by_the_url(h: Harness) -> None:
    html = b"<title>T</title><script>alert(1)</script><p>Body text</p>"
    with serve({"/page": Route(html, content_type="text/html")}) as site:
        assert h.run("load", site.url("/page")) == 0
        assert h.api.content(site.url("/page")) == "T\n\nBody text"
        assert h.api.items[0]["kind"] == "url"
        assert h.run("load", site.url("/page")) == 0  # same text: not sent again
        assert h.api.uploads() == 1


def test_a_url_that_cannot_be_fetched_is_reported_and_the_rest_is_loaded(h: Harness) -> None:
    h.write("a.py", "x\n")
    with serve({}) as site:
        assert h.run("load", "a.py", site.url("/missing")) == 1
    assert h.api.names() == ["a.py"]
    assert "answered 404" in h.err.getvalue()


def test_a_non_http_url_is_refused_before_any_request(h: Harness) -> None:
    with pytest.raises(PlancastError, match="only http and https"):
        h.run("load", "ftp://example.com/file")
    assert h.api.calls == []


def test_a_url_is_replaced_without_touching_the_urls_below_it(h: Harness) -> None:
    routes = {"/docs": Route(b"v1"), "/docs/page": Route(b"sub")}
    with serve(routes) as site:
        assert h.run("load", site.url("/docs"), site.url("/docs/page")) == 0
        routes["/docs"] = Route(b"v2")
        assert h.run("load", site.url("/docs")) == 0
    assert "stays in the context" not in h.err.getvalue()
    assert h.api.names().count(site.url("/docs")) == 1
    assert h.api.content(site.url("/docs")) == "v2"
    assert site.url("/docs/page") in h.api.names()


def test_a_changed_url_replaces_the_old_item(h: Harness) -> None:
    routes = {"/a": Route(b"v1")}
    with serve(routes) as site:
        assert h.run("load", site.url("/a")) == 0
        routes["/a"] = Route(b"v2")
        assert h.run("load", site.url("/a")) == 0
    assert h.api.content(site.url("/a")) == "v2"
    assert f"~ {site.url('/a')}" in h.out.getvalue()


# --- stdin, dry run, ls --json ----------------------------------------------------------------


def test_piped_stdin_and_notes(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a stack trace\n"))
    assert h.run("load") == 0
    assert h.api.content("stdin") == "a stack trace\n"


def test_nothing_to_load(h: Harness) -> None:
    with pytest.raises(PlancastError, match="nothing to load"):
        h.run("load", "missing.py")
    assert "skipped missing.py: does not exist" in h.err.getvalue()


def test_dry_run_needs_no_server(h: Harness) -> None:
    h.write("a.py", f"TOKEN = '{github_token()}'\n")
    assert h.run("load", "--dry-run", "-r", ".") == 0
    assert h.out.getvalue().splitlines() == ["a.py"]
    assert h.api.calls == []


def _awkward_files(h: Harness) -> None:
    """Files that load must refuse with a reason, next to ones it sends."""
    h.write("a.py", "a = 1\n")
    (h.root / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    (h.root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (h.root / "huge.txt").write_bytes(b"x" * ((1 << 20) + 1))
    (h.root.parent / "outside.txt").write_text("not yours\n")
    (h.root / "leak.txt").symlink_to(h.root.parent / "outside.txt")
    (h.root / "alias.py").symlink_to("a.py")


AWKWARD_SKIPS = [
    "skipped huge.txt: larger than 1 MiB (1.0 MiB)",
    "skipped leak.txt: symlink to outside the project",
    "skipped logo.png: binary",
]


def test_load_refuses_binary_oversized_and_outside_files_before_sending(h: Harness) -> None:
    _awkward_files(h)
    assert h.run("load", "-r", ".") == 0
    assert h.api.names() == ["a.py", "alias.py", "latin1.txt"]
    assert h.api.content("latin1.txt") == "caf\ufffd\n"
    err = h.err.getvalue().splitlines()
    # The scan skips the link; the read, which opens each file once, the others.
    assert sorted(line for line in err if line.startswith("skipped")) == AWKWARD_SKIPS
    manifest = next(i for i, line in enumerate(err) if line.startswith("to send:"))
    assert all(err.index(line) < manifest for line in AWKWARD_SKIPS)


def test_dry_run_reports_the_same_skips(h: Harness) -> None:
    _awkward_files(h)
    assert h.run("load", "--dry-run", "-r", ".") == 0
    assert h.out.getvalue().splitlines() == ["a.py", "alias.py", "latin1.txt"]
    err = h.err.getvalue().splitlines()
    assert [line for line in err if line.startswith("skipped")] == AWKWARD_SKIPS
    assert h.api.calls == []


def test_load_opens_each_file_once(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for i in range(5):
        h.write(f"src/m{i}.py", f"x = {i}\n")
    h.write("src/data.bin", "\x00\x01")
    real_open = os.open
    opened: list[str] = []

    def counting_open(path: str | bytes, flags: int, *args: int, **kwargs: int) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    assert h.run("load", "-r", "src") == 0
    assert h.api.names() == [f"src/m{i}.py" for i in range(5)]
    files = sorted(p for p in opened if p.endswith((".py", ".bin")))
    names = [f"m{i}.py" for i in range(5)] + ["data.bin"]
    assert files == sorted(str(h.root / "src" / n) for n in names)  # each once


def test_ls_json(h: Harness) -> None:
    h.write("a.py", "x = 1\n")
    h.run("load", "a.py", "-n", "hello")
    h.out.truncate(0)
    h.out.seek(0)
    assert h.run("ls", "--json") == 0
    listing = json.loads(h.out.getvalue())
    assert [(i["kind"], i["name"], i["tokens"]) for i in listing["items"]] == [
        ("file", "a.py", 2),
        ("note", "note 1", 2),
    ]
    assert all(len(i["sha256"]) == 64 and "content" not in i for i in listing["items"])


# --- update and the stale check ---------------------------------------------------------------


def _loaded(h: Harness) -> None:
    h.write("a.py", "a = 1\n")
    h.write("b.py", "b = 1\n")
    h.write("c.py", "c = 1\n")
    assert h.run("load", "a.py", "b.py", "c.py") == 0
    h.out.truncate(0)
    h.out.seek(0)
    h.err.truncate(0)
    h.err.seek(0)


def test_update_resends_only_changed_files(h: Harness) -> None:
    _loaded(h)
    assert h.run("update") == 0
    assert "the context is up to date (3 file(s) as on disk)" in h.out.getvalue()
    uploads = h.api.uploads()
    h.write("b.py", "b = 2\n")
    assert h.run("update") == 0
    assert h.api.uploads() == uploads + 1
    assert "updated 1 file(s)" in h.out.getvalue() and "~ b.py" in h.out.getvalue()
    assert h.api.content("b.py") == "b = 2\n"
    assert "to send: 1 file" in h.err.getvalue()


def test_update_reports_removed_files_and_offers_rm(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loaded(h)
    (h.root / "c.py").unlink()
    assert h.run("update") == 0
    assert "gone from disk: c.py" in h.out.getvalue()
    assert "`plancast rm c.py` removes them" in h.err.getvalue()
    assert "c.py" in h.api.names()
    monkeypatch.setattr(sys, "stdin", FakeTerminal("n\n"))
    assert h.run("update") == 0
    assert "c.py" in h.api.names() and "kept;" in h.err.getvalue()
    monkeypatch.setattr(sys, "stdin", FakeTerminal("yes\n"))
    assert h.run("update") == 0
    assert h.api.names() == ["a.py", "b.py"]


def test_update_yes_removes_gone_files(h: Harness) -> None:
    _loaded(h)
    (h.root / "a.py").unlink()
    h.write("b.py", "b = 3\n")
    assert h.run("update", "--yes") == 0
    assert h.api.names() == ["b.py", "c.py"] and h.api.content("b.py") == "b = 3\n"


def test_update_guards_secrets_and_keeps_redacted_files_fresh(h: Harness) -> None:
    h.write("conf.py", f"TOKEN = '{github_token()}'\n")
    assert h.run("load", "--redact-secrets", "conf.py") == 0
    assert h.run("update") == 0
    assert "up to date" in h.out.getvalue()
    h.write("conf.py", f"TOKEN = '{github_token()}'\nMORE = 1\n")
    assert h.run("update") == 1  # held back: the default policy blocks
    assert "held back 1 item(s)" in h.err.getvalue()
    assert h.run("update", "--redact-secrets") == 0
    assert h.api.content("conf.py").endswith("[REDACTED:github-token]'\nMORE = 1\n")


def test_update_reports_a_file_that_became_binary(h: Harness) -> None:
    _loaded(h)
    (h.root / "a.py").write_bytes(b"\x00\x01binary now")
    assert h.run("update") == 1
    assert "skipped a.py: binary" in h.err.getvalue()


def test_warn_if_stale_is_one_line_and_changes_nothing(h: Harness) -> None:
    _loaded(h)
    warn_if_stale(h.session)
    assert h.err.getvalue() == ""
    h.write("a.py", "a = 2\n")
    (h.root / "c.py").unlink()
    uploads = h.api.uploads()
    warn_if_stale(h.session)
    assert h.err.getvalue() == (
        "warning: stale context (changed on disk: a.py; gone from disk: c.py); "
        "`plancast update` re-sends them\n"
    )
    assert h.api.uploads() == uploads and h.api.content("a.py") == "a = 1\n"


def test_at_a_terminal_the_user_is_asked_and_yes_updates(h: Harness) -> None:
    _loaded(h)
    h.write("a.py", "a = 2\n")
    questions: list[str] = []
    warn_if_stale(h.session, ask=lambda q: questions.append(q) or "")  # Enter means yes
    assert questions == ["1 loaded file(s) changed on disk (a.py); update them first? [Y/n] "]
    assert h.api.content("a.py") == "a = 2\n"


def test_at_a_terminal_no_keeps_the_context_as_loaded(h: Harness) -> None:
    _loaded(h)
    h.write("a.py", "a = 2\n")
    uploads = h.api.uploads()
    warn_if_stale(h.session, ask=lambda q: "n")
    assert h.api.uploads() == uploads and h.api.content("a.py") == "a = 1\n"
    assert "stale context (changed on disk: a.py)" in h.err.getvalue()


def test_warn_if_stale_names_at_most_five(h: Harness) -> None:
    for i in range(8):
        h.write(f"f{i}.py", "1\n")
    h.run("load", "-r", ".")
    for i in range(8):
        h.write(f"f{i}.py", "2\n")
    h.err.truncate(0)
    h.err.seek(0)
    warn_if_stale(h.session)
    assert "f0.py, f1.py, f2.py, f3.py, f4.py (+3 more)" in h.err.getvalue()


def test_auto_update_resends_without_asking(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    _loaded(h)
    monkeypatch.setenv("PLANCAST_AUTO_UPDATE", "1")
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "0")  # would ask; auto-update never does
    h.write("a.py", "a = 2\n")
    (h.root / "c.py").unlink()
    warn_if_stale(h.session)
    assert h.api.content("a.py") == "a = 2\n"
    err = h.err.getvalue()
    assert "updated 1 changed file(s) before sending: a.py" in err
    assert "gone from disk but still in the context: c.py" in err
    assert "to send:" not in err  # quiet: no manifest inside tell


def test_reloading_unchanged_files_sends_and_asks_nothing(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.write("a.py", "x" * 400)
    assert h.run("load", "a.py") == 0
    monkeypatch.setenv("PLANCAST_CONFIRM_TOKENS", "1")  # would refuse if anything were sent
    assert h.run("load", "a.py") == 0
    assert h.api.uploads() == 1
    assert "loaded 0 new, 0 updated, 1 unchanged" in h.out.getvalue()


def test_update_does_not_force_a_file_that_is_now_ignored(h: Harness) -> None:
    h.write("notes.txt", "v1\n")
    assert h.run("load", "notes.txt") == 0
    h.write(".plancastignore", "notes.txt\n")
    h.write("notes.txt", "v2\n")
    assert h.run("update") == 1
    err = h.err.getvalue()
    assert "skipped notes.txt: ignored by .plancastignore:1 'notes.txt'" in err
    assert "`plancast load --force notes.txt` sends it anyway" in err
    assert h.api.content("notes.txt") == "v1\n"
