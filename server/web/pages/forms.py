"""Reading a page's form: URL-encoded, small, one value per field.

Parsed here rather than by Starlette's ``request.form()``, which needs python-multipart for
a format the pages never use (file uploads): these forms are a few short fields.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from plancast.server.errors import InvalidRequest
from plancast.shared import ErrorCode, PlancastError

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 32


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the last value wins when a name repeats).

    Raises:
        InvalidRequest: not a URL-encoded form, not UTF-8, or too many fields.
        PlancastError (message_too_large): over ``MAX_FORM_BYTES``.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("send this form from its page (a URL-encoded form)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PlancastError(
                f"a form is at most {MAX_FORM_BYTES} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
            )
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("this form could not be read: reload its page and retry") from None
    return dict(pairs)


def field(form: dict[str, str], name: str) -> str:
    """A field's value, or empty: a field the domain needs is checked there, with its message."""
    return form.get(name, "")
