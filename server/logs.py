"""Logging for the server process: one setup, a redaction filter, quiet key carriers.

Only the entry point (``cli.main``) calls ``configure``. Libraries that handle
provider keys or request headers never log below WARNING here, whatever the
level asked for: at DEBUG, websockets and the HTTP clients write raw frames
and headers, keys included.
"""

from __future__ import annotations

import logging
import re
import sys

KEY_CARRIERS = (
    "websockets",
    "uvicorn.protocols",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "anthropic",
)

_SECRET_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|"
    r"(?i:bearer)\s+[A-Za-z0-9._\-~+/=]{8,}|"
    r"(?i:(?:api[_-]?key|x-api-key|api-key|token|password|secret)[\"']?\s*[:=]\s*[\"']?)"
    r"[A-Za-z0-9._\-~+/=]{8,})"
)


def redact(text: str) -> str:
    """Replace key- and token-shaped substrings with a marker."""
    return _SECRET_PATTERNS.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    """Formats each record's message once, redacted, so no argument leaks a key."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so that it passes through redaction too.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        record.msg, record.args = cleaned, None
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in KEY_CARRIERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
