"""Errors shared by the client and the server, and the wire error codes.

Every error that can cross the wire has one stable ``ErrorCode``; both sides map
exceptions to codes here and nowhere else.

    PlancastError                 base; carries ``code`` and a safe ``message``
    ├── ProtocolError             a message could not be decoded or is not allowed
    │   ├── LocalProtocolError    we were about to send something illegal (our bug)
    │   └── RemoteProtocolError   the peer sent something illegal (their bug)
    ├── UnsafePathError           a path would escape the project or touch .git
    ├── ReplyFormatError          a model reply block is malformed
    └── EditError                 an edit cannot be applied to a file
        ├── EditNotFoundError     its anchor text is not in the file
        └── EditAmbiguousError    its anchor text matches more than once

Messages never contain secrets: callers build them from our own text, not from
foreign exception strings.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Wire error codes. Documented in docs/protocol.md (a test checks it)."""

    BAD_MESSAGE = "bad_message"
    UNKNOWN_MESSAGE = "unknown_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    BUSY = "busy"
    INVALID_REQUEST = "invalid_request"
    MISSING_CREDENTIALS = "missing_credentials"
    BAD_SEAL = "bad_seal"
    PROVIDER_AUTH = "provider_auth"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    PROVIDER_ERROR = "provider_error"
    UNSAFE_PATH = "unsafe_path"
    EDIT_FAILED = "edit_failed"
    CONTEXT_TOO_LARGE = "context_too_large"
    STREAM_GONE = "stream_gone"
    RATE_LIMITED = "rate_limited"
    SESSION_EXPIRED = "session_expired"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    EMAIL_FAILED = "email_failed"
    INTERNAL = "internal"


class PlancastError(Exception):
    """Base of every plancast error; ``message`` is safe to show and to log."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProtocolError(PlancastError):
    code = ErrorCode.BAD_MESSAGE


class LocalProtocolError(ProtocolError):
    """We were about to encode an invalid message: a bug on this side."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes we cannot accept: reply with ``code`` and go on."""


class UnsafePathError(PlancastError):
    code = ErrorCode.UNSAFE_PATH


class ReplyFormatError(PlancastError):
    code = ErrorCode.BAD_MESSAGE


class EditError(PlancastError):
    code = ErrorCode.EDIT_FAILED

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class EditNotFoundError(EditError):
    pass


class EditAmbiguousError(EditError):
    pass
