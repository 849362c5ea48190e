"""Reviewing pending changes hunk by hunk, like ``git add -p``: what each answer means.

The walk is pure: it asks a callback about each hunk and returns what was taken. Showing the
hunk, reading the key, writing the files and telling the server belong to the caller
(``commands/changes.py``).

Rules:

1. Files are reviewed in the order ``compute`` gives them, and only those whose ops apply
   (``FileResult.ok``). A file's hunks are ``split_hunks(old, new)``: the ones ``diff``
   shows; a file the change creates is one hunk.
2. The answers: ``y`` takes the hunk, ``n`` skips it, ``a`` takes it and the rest of its
   file, ``d`` skips it and the rest of its file, ``q`` stops: that hunk and every one after
   it, in every file, is not taken.
3. A file's status when the walk ends:

   - ``applied``: every hunk taken (or it has none: its ops change nothing);
   - ``partial``: some hunks taken; it is written with only those, and its changes are
     marked applied on the server (a change is one op, not one hunk, so there is no
     status that says "part of it"; the output says which hunks were left out);
   - ``rejected``: every hunk answered and none taken; the file is not touched;
   - ``pending``: the walk stopped (``q``) before every hunk of the file was answered and
     none was taken, or it never reached the file; it is not touched and stays pending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from plancast.client.apply.changeset import FileResult
from plancast.shared import Hunk, apply_hunks, split_hunks

Answer = Literal["y", "n", "a", "d", "q"]
Status = Literal["applied", "partial", "rejected", "pending"]
ANSWERS: tuple[Answer, ...] = ("y", "n", "a", "d", "q")


@dataclass(frozen=True, slots=True)
class HunkStep:
    """One question of the walk: this hunk of this file (numbers count from 1)."""

    result: FileResult
    hunk: Hunk
    number: int
    hunks: int
    file_number: int
    files: int

    @property
    def path(self) -> str:
        return self.result.path


@dataclass(slots=True)
class FileReview:
    """What the walk decided for one file."""

    result: FileResult
    hunks: tuple[Hunk, ...]
    taken: list[Hunk] = field(default_factory=list)
    answered: int = 0
    reached: bool = False

    @property
    def status(self) -> Status:
        if not self.reached:
            return "pending"
        if len(self.taken) == len(self.hunks):
            return "applied"
        if self.taken:
            return "partial"
        return "rejected" if self.answered == len(self.hunks) else "pending"

    @property
    def skipped(self) -> int:
        """How many of its hunks are not taken."""
        return len(self.hunks) - len(self.taken)

    def to_write(self) -> FileResult:
        """The file's result with only the hunks taken (for ``write_all``)."""
        return replace(self.result, new=apply_hunks(self.result.old, self.taken))


def walk(results: Sequence[FileResult], ask: Callable[[HunkStep], Answer]) -> list[FileReview]:
    """Ask about every hunk of every file that applies, in order, and record the answers.

    Args:
        results: the files as ``compute`` gave them; those with an error are left out.
        ask: shows a hunk and returns the user's answer (rule 2).

    Returns:
        One ``FileReview`` for each file that applies, in the same order.

    Raises:
        ValueError: ``ask`` returned something that is not an answer.
    """
    reviews = [
        FileReview(r, split_hunks(r.old, r.new)) for r in results if r.ok and r.new is not None
    ]
    for file_number, review in enumerate(reviews, start=1):
        review.reached = True
        for index, hunk in enumerate(review.hunks):
            step = HunkStep(
                review.result, hunk, index + 1, len(review.hunks), file_number, len(reviews)
            )
            answer = ask(step)
            if answer not in ANSWERS:
                raise ValueError(f"not an answer: {answer!r}")
            if answer == "q":
                return reviews
            if answer in ("y", "a"):
                review.taken.append(hunk)
            if answer == "a":
                review.taken.extend(review.hunks[index + 1 :])
            review.answered = len(review.hunks) if answer in ("a", "d") else index + 1
            if answer in ("a", "d"):
                break
    return reviews
