"""Attempts per client address, for the routes that guess-resistant secrets guard.

Per account limits live in the database (``domain/accounts.py``, ``domain/codes.py``) and
hold across replicas. This one is per process and in memory on purpose: a client's
address is personal data, and it is never written anywhere.
"""

from __future__ import annotations

import time
from collections import deque

from starlette.requests import Request

from plancast.server.errors import RateLimited

WINDOW_S = 300.0
MAX_ATTEMPTS = 30  # per address and window, over sign-up, sign-in, codes and resets
MAX_ADDRESSES = 100_000  # past this, the oldest address is forgotten first


class Throttle:
    def __init__(self, window_s: float = WINDOW_S, max_attempts: int = MAX_ATTEMPTS) -> None:
        self._window_s = window_s
        self._max = max_attempts
        self._seen: dict[str, deque[float]] = {}

    def check(self, request: Request) -> None:
        """Count one attempt from the request's address.

        Raises:
            RateLimited: the address made ``max_attempts`` in the window already.
        """
        address = request.client.host if request.client else "?"
        at = time.monotonic()
        times = self._seen.pop(address, None) or deque()
        while times and times[0] <= at - self._window_s:
            times.popleft()
        self._seen[address] = times  # re-inserted: the dict stays ordered by last attempt
        if len(times) >= self._max:
            raise RateLimited(
                "too many attempts from your address: wait a few minutes",
                retry_after=times[0] + self._window_s - at,
            )
        times.append(at)
        while len(self._seen) > MAX_ADDRESSES:
            del self._seen[next(iter(self._seen))]
