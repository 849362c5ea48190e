"""Committing the files an apply wrote, with git, and nothing else (``apply --commit``).

Rules:

1. Only the paths the apply wrote are committed, with ``git commit --only -- PATHS``: what
   the user had staged before stays staged and stays out of the commit.
2. ``--only`` takes only paths git knows, so a new file is added first (``git add``). A new
   file that git ignores is left out of the commit and named (the user ignored it for a
   reason); a path removed from disk (deleted, or the source of a move) is committed only
   when git tracks it.
3. ``check`` runs before anything is written: without git, or outside a git work tree, the
   apply does not happen. A commit that fails afterwards (a hook, signing, nothing to commit)
   leaves the files written; the new files step 2 added are unstaged again, and the error
   says that the files were written.
4. git runs in the project root, with pathspecs taken literally (``GIT_LITERAL_PATHSPECS``:
   a file named ``*.py`` is that file, not a glob), no pager, no prompt, and the message on
   stdin (``-F -``), so no editor opens and the message's length has no limit.
5. The message the commit gets, first found: ``-m``; the committer role's message from the
   streams that proposed the applied changes; else ``default_message``, built only from the
   plan's latest prompt and the changed files, so the same apply gives the same message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plancast.shared import ErrorCode, PlancastError

SUBJECT_CHARS = 72
"""The longest subject line ``default_message`` writes (git's own tools wrap beyond it)."""


class GitCommitError(PlancastError):
    """``apply --commit`` cannot commit: no git, not a repository, or git refused."""

    code = ErrorCode.INVALID_REQUEST


@dataclass(frozen=True, slots=True)
class FileChange:
    """One applied file, as the commit and its message see it.

    ``status`` is git's letter: ``A`` created, ``M`` modified, ``D`` deleted, ``R`` moved
    (from ``source``).
    """

    path: str
    status: str
    source: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the change touched on disk."""
        return (self.source, self.path) if self.source else (self.path,)


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    subject: str
    paths: tuple[str, ...]
    ignored: tuple[str, ...]


def check(root: Path) -> str:
    """The git executable, after checking that ``root`` is in a git work tree (rule 3).

    Raises:
        GitCommitError: git is not installed, or ``root`` is not in a git work tree.
    """
    git = shutil.which("git")
    if git is None:
        raise GitCommitError("--commit needs git, and git is not installed (or not on PATH)")
    done = _run(git, root, "rev-parse", "--is-inside-work-tree", check=False)
    if done.returncode != 0 or done.stdout.strip() != "true":
        raise GitCommitError(
            f"--commit needs a git repository, and {root} is not in one (`git init` makes one)"
        )
    return git


def commit(git: str, root: Path, changes: Sequence[FileChange], message: str) -> Commit:
    """Commit exactly the files of ``changes`` (rules 1, 2 and 4).

    Raises:
        GitCommitError: git refused; the message says what git said.
    """
    paths = sorted({p for change in changes for p in change.paths})
    if not paths:
        raise GitCommitError("nothing was applied, so there is nothing to commit")
    on_disk = [p for p in paths if (root / p).exists()]
    gone = [p for p in paths if p not in on_disk]
    untracked = set(_ls(git, root, ("--others", "--exclude-standard"), on_disk))
    ignored = set(_ls(git, root, ("--others", "--ignored", "--exclude-standard"), on_disk))
    tracked_gone = set(_ls(git, root, ("--cached",), gone))
    chosen = [p for p in paths if p not in ignored and (p in on_disk or p in tracked_gone)]
    if not chosen:
        raise GitCommitError(
            "git ignores every file that was applied, so nothing was committed: "
            + ", ".join(sorted(ignored))
        )
    added = sorted(untracked - ignored)
    if added:
        _run(git, root, "add", "--", *added)
    done = _run(
        git,
        root,
        "commit",
        "--quiet",
        "--only",
        "-F",
        "-",
        "--",
        *chosen,
        stdin=message,
        check=False,
    )
    if done.returncode != 0:
        if added:  # rule 3: the index as it was
            _run(git, root, "rm", "--cached", "--quiet", "--ignore-unmatch", "--", *added)
        said = done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}"
        raise GitCommitError(f"git commit failed: {said}")
    sha = _run(git, root, "rev-parse", "--short", "HEAD").stdout.strip()
    subject = _run(git, root, "log", "-1", "--format=%s").stdout.strip()
    return Commit(sha, subject, tuple(chosen), tuple(sorted(ignored)))


def default_message(prompt: str | None, changes: Sequence[FileChange]) -> str:
    """A message from the plan's latest prompt and the changed files (rule 5).

    The subject is the prompt's first non-blank line with its spaces collapsed, cut at a word
    to ``SUBJECT_CHARS`` with an ellipsis; without a prompt it counts the files. The body
    lists each file with git's status letter, in path order.
    """
    line = next((ln for ln in (prompt or "").splitlines() if ln.strip()), "")
    subject = _cut(" ".join(line.split()), SUBJECT_CHARS)
    if not subject:
        count = len(changes)
        subject = f"Apply plancast changes to {count} file{'s' if count != 1 else ''}"
    listed = []
    for change in sorted(changes, key=lambda c: c.path):
        shown = f"{change.source} -> {change.path}" if change.source else change.path
        listed.append(f"  {change.status} {shown}")
    return f"{subject}\n\nApplied with plancast:\n" + "\n".join(listed) + "\n"


# -- internals --------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:  # a word boundary not too far back; else cut the word
        head = head[:space]
    return head.rstrip() + "…"


def _ls(git: str, root: Path, flags: Sequence[str], paths: Sequence[str]) -> list[str]:
    """``git ls-files -z FLAGS -- PATHS``: the paths it lists; none when given none."""
    if not paths:
        return []
    done = _run(git, root, "ls-files", "-z", *flags, "--", *paths)
    return [p for p in done.stdout.split("\0") if p]


def _run(
    git: str, root: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_LITERAL_PATHSPECS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }
    try:
        done = subprocess.run(
            [git, *args],
            cwd=root,
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise GitCommitError(f"could not run git: {exc.strerror or exc}") from None
    if check and done.returncode != 0:
        said = done.stderr.strip() or f"exit {done.returncode}"
        raise GitCommitError(f"git {args[0]} failed: {said}")
    return done
