"""``@path`` in a prompt: files and folders to load before the prompt is sent.

A mention is ``@`` at the start of the prompt or after a space, followed by a path that exists,
relative to the current directory. Anything else stays plain text: ``@property``, ``@user`` or
``me@example.com`` mean what they say unless such a path exists. Punctuation that ends a
sentence (``.,;:!?)``) is not part of the path unless the path exists with it.

Pure apart from the existence checks, which go through ``exists`` so that tests can fake them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

_MENTION = re.compile(r"(?:^|(?<=\s))@(\S+)")
_TRAILING = ".,;:!?)]}'\""


class Mention(NamedTuple):
    path: str
    is_dir: bool


def find_mentions(
    text: str, cwd: Path, kind: Callable[[Path], str | None] | None = None
) -> list[Mention]:
    """The existing paths mentioned in ``text``, in order, each once.

    ``kind(path)`` says ``"file"``, ``"dir"`` or ``None`` (does not exist); by default it asks
    the file system.
    """
    kind = kind or _kind
    found: list[Mention] = []
    seen: set[str] = set()
    for match in _MENTION.finditer(text):
        raw = match.group(1)
        for candidate in (raw, raw.rstrip(_TRAILING)):
            if not candidate or candidate in seen:
                continue
            what = kind(cwd / candidate)
            if what is not None:
                seen.add(candidate)
                found.append(Mention(candidate, what == "dir"))
                break
    return found


def load_arguments(mentions: list[Mention]) -> list[str]:
    """The ``load`` command line for ``mentions`` (``-r`` when a folder is among them)."""
    args = [m.path for m in mentions]
    return ["-r", *args] if any(m.is_dir for m in mentions) else args


def _kind(path: Path) -> str | None:
    try:
        if path.is_dir():
            return "dir"
        if path.exists():
            return "file"
    except OSError:
        return None
    return None
