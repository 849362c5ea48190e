"""Fuzzy matching for completion: the query's characters, in order, anywhere in the candidate.

Ranking, strongest first: the query as a prefix of the file name; as a substring of the file
name; as a substring anywhere; then the characters spread out, preferring matches that start
words (after ``/``, ``_``, ``-``, ``.`` or a space), a tight span, and a short candidate. Case
is ignored unless the query has a capital letter ("smart case", as in fzf and ripgrep).

The filter runs one compiled regular expression over each candidate, so that a project of
100,000 paths still completes between two keystrokes; Python-level scoring runs on matches only.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from typing import NamedTuple

_BOUNDARY = frozenset("/_-. \\")


class Match(NamedTuple):
    text: str
    score: int
    positions: tuple[int, ...]  # indices of the matched characters, for highlighting


def compile_query(query: str) -> re.Pattern[str]:
    flags = 0 if any(ch.isupper() for ch in query) else re.IGNORECASE
    return re.compile(".*?".join(f"({re.escape(ch)})" for ch in query), flags)


def match(query: str, candidate: str, pattern: re.Pattern[str] | None = None) -> Match | None:
    """``candidate``'s score for ``query`` and where the characters matched, or ``None``."""
    if not query:
        return Match(candidate, 0, ())
    pattern = pattern or compile_query(query)
    found = pattern.search(candidate)
    if found is None:
        return None
    case = (lambda s: s) if pattern.flags & re.IGNORECASE == 0 else str.lower
    needle, hay = case(query), case(candidate)
    base_at = candidate.rstrip("/").rfind("/") + 1
    base = hay[base_at:]
    n = len(query)
    at = base.find(needle)
    if at == 0:
        return Match(candidate, 4000 - len(candidate), tuple(range(base_at, base_at + n)))
    if at > 0:
        pos = base_at + at
        return Match(candidate, 3000 - len(candidate), tuple(range(pos, pos + n)))
    at = hay.find(needle)
    if at >= 0:
        bonus = 50 if at == 0 or candidate[at - 1] in _BOUNDARY else 0
        return Match(candidate, 2000 + bonus - len(candidate), tuple(range(at, at + n)))
    # Spread out: prefer the match inside the file name, then word starts and a tight span.
    in_base = pattern.search(candidate, base_at)
    if in_base is not None:
        found = in_base
    positions = tuple(found.start(i + 1) for i in range(n))
    starts = sum(1 for p in positions if p == 0 or candidate[p - 1] in _BOUNDARY)
    span = positions[-1] - positions[0]
    score = 1000 + 30 * starts - span - len(candidate) // 4 + (100 if in_base else 0)
    return Match(candidate, score, positions)


def fuzzy_filter(query: str, candidates: Iterable[str], limit: int = 50) -> list[Match]:
    """The best ``limit`` candidates for ``query``, best first (ties keep their input order)."""
    if not query:
        out: list[Match] = []
        for candidate in candidates:
            out.append(Match(candidate, 0, ()))
            if len(out) >= limit:
                break
        return out
    pattern = compile_query(query)
    search = pattern.search
    scored = (
        (m.score, -index, m)
        for index, candidate in enumerate(candidates)
        if search(candidate) is not None and (m := match(query, candidate, pattern)) is not None
    )
    return [m for _, _, m in heapq.nlargest(limit, scored, key=lambda t: (t[0], t[1]))]
