"""Helpers shared by the context tests: git in a subprocess and tree builders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


def git(root: Path, *args: str, input_: bytes | None = None) -> bytes:
    """Run git in ``root`` and return its stdout (raises on failure)."""
    return subprocess.run(
        ["git", *args],
        cwd=root,
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        input=input_,
    ).stdout


def git_init(root: Path) -> None:
    """Make ``root`` a repository (quietly, with a fixed default branch)."""
    git(root, "init", "-q", "--template=", "-b", "main")


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Create files (and their directories); a path ending in "/" makes an empty directory."""
    for rel, content in files.items():
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def git_listing(root: Path) -> list[str]:
    """``git ls-files -co --exclude-standard``: what git considers not ignored."""
    out = git(root, "ls-files", "-co", "--exclude-standard", "-z")
    return sorted(os.fsdecode(p) for p in out.split(b"\0") if p)
