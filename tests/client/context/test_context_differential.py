"""Differential test: the scanner's file set equals ``git ls-files -co --exclude-standard``.

Seeded random trees with tricky nested ignore files (negations, escapes, dir-only and anchored
patterns, every ``**`` form, classes, trailing spaces, CRLF), an ``info/exclude`` and a global
excludes file, plus randomly tracked files. Each tree is compared twice:

1. inside the repository, against git's own listing;
2. with ``.git`` removed, against git's listing computed with an empty ``info/exclude`` and no
   tracked files (what git would say if the folder were a fresh repository).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from plancast.client.context.ignore import IgnoreEngine
from plancast.client.context.scan import ScanOptions, list_project_paths, scan
from tests.client.context.context_helpers import git, git_init, git_listing

SEEDS = range(48)

NAMES = [
    "a",
    "b",
    "ab",
    "abc",
    "foo",
    "bar",
    "build",
    "lib",
    "src",
    "x.py",
    "y.txt",
    "z.log",
    "keep.log",
    "A.PY",
    ".hidden",
    "deep.d",
    "#hash",
    "!bang",
    "sp ace",
    "trail ",
    "é.txt",
    "ü",
    "[x]",
    "x",
    "q?",
    "star*",
    "back\\s",
    "data-1",
    "data-22",
]


def _random_tree(rng: random.Random, root: Path) -> tuple[list[Path], list[Path]]:
    """Create directories and small files; return (dirs, files) created."""
    dirs: list[Path] = [root]
    files: list[Path] = []
    frontier = [(root, 0)]
    while frontier:
        here, depth = frontier.pop()
        for name in rng.sample(NAMES, rng.randint(2, 6)):
            path = here / name
            if depth < 3 and rng.random() < 0.4:
                path.mkdir()
                dirs.append(path)
                frontier.append((path, depth + 1))
            else:
                path.write_text(f"{name}\n")
                files.append(path)
    return dirs, files


def _escape_name(rng: random.Random, name: str) -> str:
    """Write ``name`` as a pattern, sometimes escaping what git would otherwise interpret."""
    out = []
    for ch in name:
        if ch in "*?[\\" and rng.random() < 0.7:
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    if text[:1] in "#!" and rng.random() < 0.7:
        text = "\\" + text
    if text.endswith(" ") and rng.random() < 0.5:
        text = text[:-1] + "\\ "
    return text


def _wild(rng: random.Random, name: str) -> str:
    """Turn a name into a glob that may still match it (or a near miss)."""
    roll = rng.random()
    if roll < 0.2 and len(name) > 1:
        i = rng.randrange(len(name))
        return name[:i] + "?" + name[i + 1 :]
    if roll < 0.4:
        return "*" + name[rng.randrange(len(name)) :]
    if roll < 0.55:
        return name[: rng.randrange(1, len(name) + 1)] + "*"
    if roll < 0.7 and name[0].isalpha():
        return rng.choice(["[a-c]", "[!a]", "[[:alpha:]]", "[^x-z]", "[]a]"]) + name[1:]
    if roll < 0.8:
        return name + "**"
    return _escape_name(rng, name)


def _pattern(rng: random.Random, rel_names: list[list[str]]) -> str:
    """One random ignore line built from names that exist somewhere in the tree."""
    roll = rng.random()
    if roll < 0.05:
        return "# comment " + rng.choice(NAMES)
    if roll < 0.08:
        return ""
    parts = rng.choice(rel_names)
    name = parts[-1]
    shape = rng.random()
    if shape < 0.35:
        body = _wild(rng, name) if rng.random() < 0.5 else _escape_name(rng, name)
    elif shape < 0.5:
        body = "/" + _escape_name(rng, name)
    elif shape < 0.62:
        body = "/".join(_escape_name(rng, p) for p in parts)
        if rng.random() < 0.3:
            body = "/" + body
    elif shape < 0.72:
        body = "**/" + _wild(rng, name)
    elif shape < 0.8:
        body = _escape_name(rng, parts[0]) + "/**" + rng.choice(["", "/" + _wild(rng, name)])
    elif shape < 0.88:
        body = "*/" + _wild(rng, name)
    else:
        body = rng.choice(["*", "*.txt", "*.log", "*.py", "a*", "**/b", "*/", "**", "z.*"])
    if rng.random() < 0.2 and not body.endswith("/"):
        body += "/"
    if rng.random() < 0.3:
        body = "!" + body
    if rng.random() < 0.1:
        body += rng.choice(["  ", " ", "\t"])
    return body


def _write_ignore(rng: random.Random, path: Path, rel_names: list[list[str]]) -> None:
    lines = [_pattern(rng, rel_names) for _ in range(rng.randint(1, 7))]
    newline = "\r\n" if rng.random() < 0.15 else "\n"
    data = newline.join(lines) + (newline if rng.random() < 0.8 else "")
    path.write_bytes(data.encode())


def _build(seed: int, root: Path, home: Path) -> None:
    rng = random.Random(seed)
    dirs, files = _random_tree(rng, root)
    rel_names = [list(p.relative_to(root).parts) for p in dirs[1:] + files]
    for d in dirs:
        if rng.random() < (0.8 if d == root else 0.3):
            names = [list(p.relative_to(d).parts) for p in dirs[1:] + files if d in p.parents]
            _write_ignore(rng, d / ".gitignore", names or rel_names)
    git_init(root)
    if rng.random() < 0.6:
        (root / ".git" / "info").mkdir(exist_ok=True)
        _write_ignore(rng, root / ".git" / "info" / "exclude", rel_names)
    roll = rng.random()
    if roll < 0.35:
        excludes = home / "global-excludes"
        _write_ignore(rng, excludes, rel_names)
        (home / "gitconfig").write_text(f"[core]\n\texcludesFile = {excludes}\n")
    elif roll < 0.7:
        xdg_ignore = home / "xdg" / "git" / "ignore"
        xdg_ignore.parent.mkdir(parents=True, exist_ok=True)
        _write_ignore(rng, xdg_ignore, rel_names)


def _track_some(seed: int, root: Path) -> None:
    rng = random.Random(seed * 7919 + 1)
    files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    chosen = [p for p in files if rng.random() < 0.25]
    if chosen:
        git(root, "add", "-f", "--", *(str(p.relative_to(root)) for p in chosen))


def _our_listing(root: Path) -> list[str]:
    """The scan's files, the same whether it opens them (``--dry-run``) or not (``load``)."""
    listings = []
    for defer in (False, True):
        options = ScanOptions(recursive=True, default_ignores=False, defer_checks=defer)
        result = scan(root, ["."], options, cwd=root)
        assert result.skipped == []
        listings.append([f.path for f in result.files])
    assert listings[0] == listings[1]
    return listings[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_same_files_as_git(seed: int, tmp_path: Path, git_env: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _build(seed, root, git_env)

    # 1. Inside the repository, some files tracked (some of them ignored).
    _track_some(seed, root)
    expected = git_listing(root)
    assert _our_listing(root) == expected
    assert list_project_paths(root, default_ignores=False) == expected

    # 2. Without a repository: no info/exclude, nothing tracked.
    shutil.rmtree(root / ".git")
    git_init(root)
    expected_plain = git_listing(root)
    _check_explain_like_check_ignore(root, git_env)
    shutil.rmtree(root / ".git")
    assert _our_listing(root) == expected_plain


def _check_explain_like_check_ignore(root: Path, home: Path) -> None:
    """explain() names the same file, line and pattern as ``git check-ignore -v -n``."""
    entries = sorted(p for p in root.rglob("*") if ".git" not in p.relative_to(root).parts)
    rels = [p.relative_to(root).as_posix() for p in entries]
    out = subprocess.run(
        ["git", "check-ignore", "--stdin", "-z", "-v", "-n"],
        cwd=root,
        input="\0".join(rels).encode(),
        capture_output=True,
        check=False,  # exit status 1 only says that no path was ignored
    ).stdout
    fields = out.split(b"\0")
    theirs = {}
    for j in range(0, len(fields) - 1, 4):
        source = os.fsdecode(fields[j])
        if source.startswith(str(home)):
            source = "<global>"
        theirs[os.fsdecode(fields[j + 3])] = (
            source or None,
            int(fields[j + 1]) if fields[j + 1] else 0,
            os.fsdecode(fields[j + 2]),
        )
    engine = IgnoreEngine(root, default_ignores=False)
    ours = {}
    for path, rel in zip(entries, rels, strict=True):
        verdict = engine.verdict(rel.encode(), path.is_dir() and not path.is_symlink())
        ours[rel] = (verdict.source, verdict.line, verdict.pattern)
    assert ours == theirs


def test_trees_are_not_trivial(tmp_path: Path, git_env: Path) -> None:
    """The generator must produce trees where ignore rules actually remove files."""
    removed = 0
    for seed in SEEDS[:10]:
        root = tmp_path / f"p{seed}"
        root.mkdir()
        _build(seed, root, git_env)
        on_disk = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
        removed += len(on_disk) - len(git_listing(root))
        (git_env / "gitconfig").write_text("")
        shutil.rmtree(git_env / "xdg", ignore_errors=True)
    assert removed > 20
