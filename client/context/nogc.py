"""Pausing Python's cyclic garbage collector while a scan or a read builds per-file objects.

A large scan allocates a few container objects per file (tuples holding a ``Path``, and the
items of an upload), and keeps them all until it returns. Each few hundred such allocations
make the collector walk the young ones, and now and then every object in the process, to find
cycles that these objects never form. On a 50,000-file project that cost up to a tenth of a
scan's time (a full collection, and twice the young ones of a listing). Mercurial pauses its
collector the same way (``util.nogc``).

Pausing only delays collection: reference counting still frees everything at once, and the
collector runs again as soon as the outermost pause ends. Nested pauses are fine. Pausing
changes nothing but speed, so a pause that overlaps one in another thread is harmless.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block (if it was enabled)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
