"""Ignore rules: sources and precedence, tracked files, defaults, and explain() verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plancast.client.context import gitinfo
from plancast.client.context.defaults import DEFAULT_IGNORES
from plancast.client.context.ignore import IgnoreEngine, explain
from plancast.client.context.patterns import SourceKind, parse_ignore_bytes
from plancast.client.context.scan import ScanOptions, list_project_paths, scan
from tests.client.context.context_helpers import git, git_init, git_listing, write_tree


def loadable(root: Path, *, defaults: bool = False) -> list[str]:
    """Every loadable path of the project, through the full scanner."""
    result = scan(root, ["."], ScanOptions(recursive=True, default_ignores=defaults), cwd=root)
    return [f.path for f in result.files]


# -- parsing ---------------------------------------------------------------------------------


def test_parse_skips_comments_blank_lines_and_bom() -> None:
    data = b"\xef\xbb\xbf# comment\n\nfoo\n\\#bar\r\n  \nbaz"
    rules = parse_ignore_bytes(data, source=".gitignore", kind=SourceKind.GITIGNORE)
    assert [(r.line, r.text) for r in rules] == [(3, "foo"), (4, "\\#bar"), (5, ""), (6, "baz")]
    assert rules[1].matches(b"#bar", b"#bar", False)
    assert not rules[1].matches(b"\\#bar", b"\\#bar", False)
    assert not rules[2].matches(b"x", b"x", False)  # a blank-after-trim line matches nothing


def test_parse_flags() -> None:
    rules = parse_ignore_bytes(
        b"!keep/\n/anchored\nmid/dle\n*.log\n", source=".gitignore", kind=SourceKind.GITIGNORE
    )
    keep, anchored, middle, logs = rules
    assert keep.negated and keep.dir_only and keep.basename
    assert not anchored.basename and anchored.literal == b"anchored"
    assert not middle.basename and middle.literal == b"mid/dle"
    assert logs.basename and logs.suffix == b".log"


def test_trailing_spaces_are_trimmed_unless_escaped() -> None:
    rules = parse_ignore_bytes(
        b"a  \nb\\ \nc\\  \n", source=".gitignore", kind=SourceKind.GITIGNORE
    )
    assert [r.matches(n, n, False) for r, n in zip(rules, (b"a", b"b ", b"c "), strict=True)] == [
        True,
        True,
        True,
    ]
    assert not rules[1].matches(b"b", b"b", False)


def test_deeper_file_outranks_shallower_and_plancastignore_outranks_gitignore() -> None:
    def rank(kind: SourceKind, base: bytes) -> int:
        data = b"x\n"
        return parse_ignore_bytes(data, source="f", kind=kind, base=base)[0].priority

    order = [
        rank(SourceKind.DEFAULT, b""),
        rank(SourceKind.GLOBAL, b""),
        rank(SourceKind.INFO, b""),
        rank(SourceKind.GITIGNORE, b""),
        rank(SourceKind.PLANCASTIGNORE, b""),
        rank(SourceKind.GITIGNORE, b"a/"),
        rank(SourceKind.PLANCASTIGNORE, b"a/"),
        rank(SourceKind.GITIGNORE, b"a/b/"),
    ]
    assert order == sorted(order) and len(set(order)) == len(order)


# -- pattern rules through the scanner --------------------------------------------------------


def test_negation_reincludes(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": "*.log\n!keep.log\n", "a.log": "", "keep.log": ""})
    assert loadable(tmp_path) == [".gitignore", "keep.log"]


def test_anchoring_leading_and_middle_slash(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".gitignore": "/top\nsub/mid\n",
            "top": "",
            "x/top": "",
            "sub/mid": "",
            "x/sub/mid": "",
        },
    )
    assert loadable(tmp_path) == [".gitignore", "x/sub/mid", "x/top"]


def test_dir_only_pattern_spares_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": "out/\n", "out/a": "", "x/out": ""})
    assert loadable(tmp_path) == [".gitignore", "x/out"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("**/log", [".gitignore", "a/logs/x"]),  # leading: any depth, including the top
        ("a/**", [".gitignore", "log", "x/log"]),  # trailing: everything inside a/
        ("a/**/x", [".gitignore", "a/log", "log", "x/log"]),  # middle: zero or more dirs
        ("x/**/log", [".gitignore", "a/log", "a/logs/x", "log"]),
    ],
)
def test_double_star_forms(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    write_tree(
        tmp_path,
        {".gitignore": pattern + "\n", "log": "", "a/log": "", "a/logs/x": "", "x/log": ""},
    )
    assert loadable(tmp_path) == expected


def test_character_classes(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".gitignore": "[a-c].txt\n[!x]y.md\n", "b.txt": "", "d.txt": "", "zy.md": "", "xy.md": ""},
    )
    assert loadable(tmp_path) == [".gitignore", "d.txt", "xy.md"]


def test_escapes(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".gitignore": "\\#lit\n\\!bang\nsp\\ \n", "#lit": "", "!bang": "", "sp ": "", "sp": ""},
    )
    assert loadable(tmp_path) == [".gitignore", "sp"]


def test_parent_excluded_cannot_be_reincluded(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".gitignore": "build/\n!build/keep.txt\nlogs/*\n!logs/keep.txt\n",
            "build/keep.txt": "",
            "logs/keep.txt": "",
            "logs/drop.txt": "",
        },
    )
    assert loadable(tmp_path) == [".gitignore", "logs/keep.txt"]
    verdict = explain(tmp_path, "build/keep.txt", default_ignores=False)
    assert not verdict.included
    assert (verdict.source, verdict.line, verdict.pattern, verdict.matched) == (
        ".gitignore",
        1,
        "build/",
        "build/",
    )
    assert verdict.reason == "ignored by .gitignore:1 'build/' (matches the directory build/)"


def test_ignore_files_inside_ignored_dirs_are_not_read(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": "gen/\n", "gen/.gitignore": "!*\n", "gen/a": ""})
    assert loadable(tmp_path) == [".gitignore"]


def test_symlinked_ignore_files_are_not_followed(tmp_path: Path) -> None:
    """git refuses in-tree .gitignore symlinks (and warns); .plancastignore follows suit."""
    write_tree(tmp_path, {"rules": "*.log\n", "a.log": "", "sub/b.log": ""})
    (tmp_path / ".gitignore").symlink_to("rules")
    (tmp_path / "sub" / ".plancastignore").symlink_to("../rules")
    git_init(tmp_path)
    expected = [".gitignore", "a.log", "rules", "sub/.plancastignore", "sub/b.log"]
    assert git_listing(tmp_path) == expected
    assert loadable(tmp_path) == expected


# -- precedence between sources ---------------------------------------------------------------


def test_deeper_gitignore_wins(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".gitignore": "*.txt\n", "sub/.gitignore": "!*.txt\n", "a.txt": "", "sub/b.txt": ""},
    )
    assert loadable(tmp_path) == [".gitignore", "sub/.gitignore", "sub/b.txt"]


def test_plancastignore_applies_after_gitignore_at_same_level(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".gitignore": "*.txt\n",
            ".plancastignore": "!keep.txt\nlock.json\n",
            "sub/.plancastignore": "!lock.json\n",
            "keep.txt": "",
            "drop.txt": "",
            "lock.json": "",
            "sub/lock.json": "",
        },
    )
    assert loadable(tmp_path) == [
        ".gitignore",
        ".plancastignore",
        "keep.txt",
        "sub/.plancastignore",
        "sub/lock.json",
    ]
    verdict = explain(tmp_path, "lock.json", default_ignores=False)
    assert (verdict.source, verdict.line, verdict.pattern) == (".plancastignore", 2, "lock.json")


def test_deeper_gitignore_beats_shallower_plancastignore(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".plancastignore": "*.md\n", "docs/.gitignore": "!*.md\n", "docs/a.md": "", "b.md": ""},
    )
    assert loadable(tmp_path) == [".plancastignore", "docs/.gitignore", "docs/a.md"]


def test_info_exclude_and_global_order(tmp_path: Path, git_env: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"a.log": "", "b.log": "", "c.log": "", ".gitignore": "!c.log\n"})
    git_init(root)
    excludes = git_env / "excludes"
    excludes.write_text("*.log\n")
    (git_env / "gitconfig").write_text(f"[core]\n\texcludesFile = {excludes}\n")
    (root / ".git" / "info").mkdir()
    (root / ".git" / "info" / "exclude").write_text("!b.log\n")
    assert loadable(root) == [".gitignore", "b.log", "c.log"] == git_listing(root)
    assert explain(root, "a.log", default_ignores=False).source == "<global>"
    b = explain(root, "b.log", default_ignores=False)
    assert (b.included, b.source, b.line, b.pattern) == (True, "<info/exclude>", 1, "!b.log")


def test_info_exclude_needs_a_repository(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"a.log": "", ".git/info/exclude": "a.log\n"})
    assert loadable(root) == []  # .git is a repository: a.log excluded
    os.rename(root / ".git", root / "not-git")
    assert loadable(root) == ["a.log", "not-git/info/exclude"]


def test_global_excludes_from_xdg_then_home(
    tmp_path: Path, git_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"a.tmp": "", "b.bak": ""})
    xdg = git_env / "xdg" / "git" / "ignore"
    xdg.parent.mkdir(parents=True)
    xdg.write_text("*.tmp\n")
    home_ignore = git_env / ".config" / "git" / "ignore"
    home_ignore.parent.mkdir(parents=True)
    home_ignore.write_text("*.bak\n")
    assert loadable(tmp_path) == ["b.bak"]
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    assert loadable(tmp_path) == ["a.tmp"]


def test_global_excludes_without_git_executable(
    tmp_path: Path, git_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    excludes = git_env / "my-excludes"
    excludes.write_text("*.tmp\n")
    (git_env / "gitconfig").write_text(
        f'[user]\n\tname = x\n[core]\n\texcludesfile = "{excludes}"\n'
    )
    write_tree(tmp_path, {"a.tmp": "", "b": ""})
    monkeypatch.setattr(gitinfo, "_git", lambda: None)
    assert gitinfo.global_excludes_file(tmp_path) == excludes
    assert loadable(tmp_path) == ["b"]


# -- tracked files ----------------------------------------------------------------------------


def test_tracked_files_stay_loadable_when_ignored(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n",
            "tracked.log": "",
            "untracked.log": "",
            "build/keep.txt": "",
            "build/new.txt": "",
        },
    )
    git_init(tmp_path)
    git(tmp_path, "add", "-f", "tracked.log", "build/keep.txt")
    expected = [".gitignore", "build/keep.txt", "tracked.log"]
    assert git_listing(tmp_path) == expected
    assert loadable(tmp_path) == expected
    verdict = explain(tmp_path, "tracked.log", default_ignores=False)
    assert (verdict.included, verdict.source) == (True, "<tracked>")
    inside = explain(tmp_path, "build/new.txt", default_ignores=False)
    assert (inside.included, inside.pattern, inside.matched) == (False, "build/", "build/")
    assert explain(tmp_path, "build/keep.txt", default_ignores=False).source == "<tracked>"


def test_plancastignore_and_defaults_apply_to_tracked_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {".plancastignore": "big.json\n", "big.json": "", ".env": "", "a": ""})
    git_init(tmp_path)
    git(tmp_path, "add", "-f", "big.json", ".env", "a")
    assert loadable(tmp_path, defaults=True) == [".plancastignore", "a"]


def test_without_git_executable_tracked_rule_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {".gitignore": "*.log\n", "t.log": ""})
    git_init(tmp_path)
    git(tmp_path, "add", "-f", "t.log")
    monkeypatch.setattr(gitinfo, "_git", lambda: None)
    result = scan(tmp_path, ["."], ScanOptions(recursive=True, default_ignores=False), cwd=tmp_path)
    assert [f.path for f in result.files] == [".gitignore"]
    assert result.warnings and "git is not installed" in result.warnings[0]


# -- built-in defaults ------------------------------------------------------------------------

SECRETS = [
    ".env",
    ".env.local",
    "config/.env.production",
    "server.pem",
    "tls.key",
    "id_rsa",
    "id_ed25519",
    "cert.p12",
    "cert.pfx",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "credentials.json",
    ".aws/credentials",
    "infra/terraform.tfstate",
]
BULK = [
    "node_modules/x/index.js",
    ".venv/lib/a.py",
    "venv/lib/a.py",
    "pkg/__pycache__/a.cpython-311.pyc",
    ".mypy_cache/x.json",
    ".pytest_cache/v",
    ".ruff_cache/x",
    ".tox/py/x",
    "myenv/lib/site.py",
    "myenv/pyvenv.cfg",
]
KEPT = [
    ".env.example",
    ".env.sample",
    ".env.template",
    "id_rsa.pub",
    "src/app.py",
    "build/out.txt",
    "dist/x.js",
    "env.py",
]


def test_defaults_keep_secrets_and_bulk_out(tmp_path: Path) -> None:
    write_tree(tmp_path, {path: "x" for path in SECRETS + BULK + KEPT})
    assert loadable(tmp_path, defaults=True) == sorted(KEPT)
    assert loadable(tmp_path, defaults=False) == sorted(SECRETS + BULK + KEPT)


def test_default_verdict_names_the_table_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {".env": "", "v/pyvenv.cfg": "", "v/a.py": ""})
    env = explain(tmp_path, ".env")
    assert (env.included, env.source, env.pattern) == (False, "<default>", ".env")
    assert DEFAULT_IGNORES[env.line - 1][0] == ".env"
    assert "dotenv" in env.reason
    venv = explain(tmp_path, "v/a.py")
    assert (venv.included, venv.source, venv.matched) == (False, "<default>", "v/")
    assert "pyvenv.cfg" in venv.reason


def test_user_negation_overrides_a_default(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".gitignore": "!.env.test\n", ".plancastignore": "!node_modules/\n"},
    )
    write_tree(tmp_path, {".env.test": "", ".env": "", "node_modules/a.js": ""})
    assert loadable(tmp_path, defaults=True) == [
        ".env.test",
        ".gitignore",
        ".plancastignore",
        "node_modules/a.js",
    ]
    verdict = explain(tmp_path, ".env.test")
    assert verdict.included and (verdict.source, verdict.line) == (".gitignore", 1)
    assert verdict.reason == "included: re-included by .gitignore:1 '!.env.test'"


def test_user_exclusion_beats_a_default_negation(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": ".env.example\n", ".env.example": ""})
    assert loadable(tmp_path, defaults=True) == [".gitignore"]


def test_git_and_plancast_dirs_are_never_loadable(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {".plancast/state": "", "sub/.git": "gitdir: x\n", "sub/.plancast/x": "", "a": ""},
    )
    (tmp_path / ".plancastignore").write_text("!.plancast/\n!.git\n")
    assert loadable(tmp_path, defaults=True) == [".plancastignore", "a"]
    verdict = explain(tmp_path, ".plancast/state")
    assert (verdict.included, verdict.source) == (False, "<builtin>")


# -- explain() --------------------------------------------------------------------------------


def test_explain_no_rule_and_nested_source(tmp_path: Path) -> None:
    write_tree(tmp_path, {"src/.gitignore": "# c\n\n*.gen.py\n", "src/a.gen.py": "", "b": ""})
    plain = explain(tmp_path, "b")
    assert (plain.included, plain.source, plain.reason) == (
        True,
        None,
        "included: no ignore rule matches",
    )
    gen = explain(tmp_path, "src/a.gen.py")
    assert (gen.source, gen.line, gen.pattern) == ("src/.gitignore", 3, "*.gen.py")
    assert gen.reason == "ignored by src/.gitignore:3 '*.gen.py'"


def test_explain_relative_to_cwd_and_outside(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": "/sub/x\n", "sub/x": ""})
    verdict = explain(tmp_path, "x", cwd=tmp_path / "sub")
    assert (verdict.path, verdict.included) == ("sub/x", False)
    assert explain(tmp_path, tmp_path / "sub" / "x").path == "sub/x"
    with pytest.raises(ValueError, match="outside the project"):
        explain(tmp_path, "../elsewhere")


def test_explain_missing_path_with_trailing_slash_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("cache/\n")
    assert explain(tmp_path, "cache").included
    assert not explain(tmp_path, "cache/").included


def test_engine_agrees_with_list_project_paths(tmp_path: Path) -> None:
    write_tree(tmp_path, {".gitignore": "*.o\n!keep.o\n", "a.o": "", "keep.o": "", "s/b.o": ""})
    engine = IgnoreEngine(tmp_path, default_ignores=False)
    listed = list_project_paths(tmp_path, default_ignores=False)
    for rel in (".gitignore", "a.o", "keep.o", "s/b.o"):
        assert engine.verdict(rel.encode(), False).included == (rel in listed)


# -- client start-up ----------------------------------------------------------------------------


def test_importing_the_scanner_stays_light() -> None:
    code = (
        "import sys, plancast.client.context.scan, plancast.client.context.ignore;"
        "heavy = [m for m in ('openai', 'anthropic', 'starlette', 'sqlalchemy', 'pathspec',"
        " 'subprocess', 'threading') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=off", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.split(",") == [""] or set(out.split(",")) <= {"subprocess", "threading"}
    assert not {"openai", "anthropic", "starlette", "sqlalchemy", "pathspec"} & set(out.split(","))
