"""Logging for the server process: one setup, a redaction filter, quiet key carriers.

Only the entry point (``cli.main``) calls ``configure``. Libraries that handle
provider keys or request headers never log below WARNING here, whatever the
level asked for: at DEBUG, websockets and the HTTP clients write raw frames
and headers, keys included.

Lines are text (for a terminal) or JSON, one object a line (for a log collector). Either
way every record passes ``RedactingFilter`` before it is formatted, and a line logged while
a request is handled carries that request's id (``REQUEST_ID``, set by
``web/request_ids.py``): a stream started over a WebSocket keeps the id of that connection.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

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


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "plancast_request_id", default=None
)
"""The id of the request being handled in this context, or None outside any request."""


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (``record.request_id``, None if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``logger``, ``message``, and
    ``request_id`` and ``exc`` (the traceback) when there are.

    A formatter of our own rather than a library's: this is all of it. It writes the
    record's message and traceback as ``RedactingFilter`` (on the same handler) left them.
    """

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_text:  # rendered and redacted by RedactingFilter
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        # ASCII only: no character in the text can split the line (U+2028 would, for some).
        return json.dumps(line)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


FORMAT_ENV = "PLANCAST_LOG_FORMAT"
"""Where a worker process finds the format: ``configure`` sets it for the processes to come."""


def redacting_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr) as ``fmt`` (text or json), every record
    redacted first, with the request id when there is one."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr), redacted, as ``fmt`` (text or json).

    The format is also put in the environment (``FORMAT_ENV``), so that the fork server and
    its workers, which write to the same stderr, can write their lines the same way.
    """
    os.environ[FORMAT_ENV] = fmt
    root = logging.getLogger()
    root.handlers[:] = [redacting_handler(fmt, stream)]
    root.setLevel(level.upper())
    for name in KEY_CARRIERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
