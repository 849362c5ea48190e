"""One TLS context per process, shared by every SDK client it builds.

Building a context loads the CA bundle, ~40 ms here, and the SDKs build one for
every client; plancast makes a client per model call. The fork server builds
this one while it warms up, so every worker inherits it ready (``workers/warmup.py``).
It is made the way the SDKs' HTTP stack makes its default (``httpx2``), so
``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` keep working.
"""

from __future__ import annotations

import ssl

_context: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        import httpx2

        _context = httpx2.create_ssl_context()
    return _context
