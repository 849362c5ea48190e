"""Reviewing pending changes hunk by hunk, like ``git add -p``: what each answer means.

The walk is pure: it asks a callback about each hunk and returns what was taken. Showing the
hunk, reading the key, writing the files and telling the server belong to the caller
(``commands/changes.py``). ``apply --review`` writes the hunks taken; ``reject --review`` asks
the same walk which hunks to drop, so there a hunk taken is a hunk rejected, and the file
keeps the others (``FileReview.kept_text``).

Rules:

1. Files are reviewed in the order ``compute`` gives them, and only those whose ops apply
   (``FileResult.ok``). A file's hunks are ``split_hunks(old, new)``: the ones ``diff``
   shows; a file the change creates is one hunk.
2. Some changes cannot be split: a file deleted, and files that changes tie together
   (``FileResult.together``: a move's source and destination, and what later changes touch
   with them). Each such unit is one question, answered for all its files at once, so that a
   move is never half done (a copy left behind, or a file gone without its new home). Its one
   step is ``whole``; its files beyond the first are ``tied``.
3. The answers: ``y`` takes the hunk, ``n`` skips it, ``a`` takes it and the rest of its
   file, ``d`` skips it and the rest of its file, ``q`` stops: that hunk and every one after
   it, in every file, is not taken.
4. A file's status when the walk ends:

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

WHOLE = Hunk("", ((0, 0, ()),))
"""The one step of a unit that is taken or left whole (rule 2); the caller shows its files."""


@dataclass(frozen=True, slots=True)
class HunkStep:
    """One question of the walk: this hunk of this file (numbers count from 1)."""

    result: FileResult
    hunk: Hunk
    number: int
    hunks: int
    file_number: int
    files: int
    tied: tuple[FileResult, ...] = ()

    @property
    def path(self) -> str:
        return self.result.path

    @property
    def whole(self) -> bool:
        """The step stands for the whole unit (rule 2), not for one hunk of a text."""
        return self.hunk is WHOLE


@dataclass(slots=True)
class FileReview:
    """What the walk decided for one file, or one unit of files tied together (rule 2)."""

    result: FileResult
    hunks: tuple[Hunk, ...]
    taken: list[Hunk] = field(default_factory=list)
    answered: int = 0
    reached: bool = False
    tied: tuple[FileResult, ...] = ()

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
    def whole(self) -> bool:
        return self.hunks == (WHOLE,)

    @property
    def results(self) -> tuple[FileResult, ...]:
        """Every file of the unit, the first one first."""
        return (self.result, *self.tied)

    @property
    def change_ids(self) -> list[str]:
        """The changes of every file of the unit, each once, in order."""
        return list(dict.fromkeys(cid for r in self.results for cid in r.change_ids))

    @property
    def skipped(self) -> int:
        """How many of its hunks are not taken."""
        return len(self.hunks) - len(self.taken)

    def to_write(self) -> list[FileResult]:
        """The files with only the hunks taken (for ``write_all``); a whole unit as it is."""
        if self.whole:
            return list(self.results) if self.taken else []
        return [replace(self.result, new=apply_hunks(self.result.old, self.taken))]

    def kept_text(self) -> str | None:
        """The file with only the hunks *not* taken (``reject --review``: the ones kept)."""
        taken = {id(h) for h in self.taken}
        return apply_hunks(self.result.old, [h for h in self.hunks if id(h) not in taken])


def units(results: Sequence[FileResult]) -> list[FileReview]:
    """The units the walk asks about, in order (rules 1 and 2), before any answer."""
    ok = [r for r in results if r.ok]
    by_path = {r.path: r for r in ok}
    seen: set[str] = set()
    found = []
    for result in ok:
        if result.path in seen:
            continue
        tied_paths = [p for p in result.together if p != result.path and p in by_path]
        group = [result, *(by_path[p] for p in tied_paths if p not in seen)]
        seen.update(r.path for r in group)
        first, *tied = group
        if tied or first.new is None:
            hunks: tuple[Hunk, ...] = (WHOLE,) if any(r.new != r.old for r in group) else ()
            found.append(FileReview(first, hunks, tied=tuple(tied)))
        else:
            found.append(FileReview(first, split_hunks(first.old, first.new)))
    return found


def walk(results: Sequence[FileResult], ask: Callable[[HunkStep], Answer]) -> list[FileReview]:
    """Ask about every hunk of every file that applies, in order, and record the answers.

    Args:
        results: the files as ``compute`` gave them; those with an error are left out.
        ask: shows a hunk and returns the user's answer (rule 3).

    Returns:
        One ``FileReview`` for each unit (rule 2), in the same order.

    Raises:
        ValueError: ``ask`` returned something that is not an answer.
    """
    reviews = units(results)
    for file_number, review in enumerate(reviews, start=1):
        review.reached = True
        for index, hunk in enumerate(review.hunks):
            step = HunkStep(
                review.result,
                hunk,
                index + 1,
                len(review.hunks),
                file_number,
                len(reviews),
                review.tied,
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
