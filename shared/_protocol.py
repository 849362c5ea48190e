"""The stream protocol spoken over the WebSocket at ``/api/v1/streams``.

Rules:

1. The WebSocket subprotocol names the version (``plancast.v1``); a server that
   does not speak it refuses the handshake.
2. Each frame is one JSON object with a ``type``. Messages are frozen dataclasses
   that validate when built, so an invalid message cannot exist on either side.
3. Client messages: ``start``, ``attach``, ``stop``, ``ping``.
   Server messages: ``started``, ``error``, ``pong`` and the stream events.
4. Stream events (``delta``, ``status``, ``change``, ``end``) carry the stream id
   and a sequence number that starts at 1 and grows by 1 with no gap. A client
   that has seen events up to N attaches with ``after=N`` and gets exactly the
   rest. ``end`` is always the last event of a stream. When the events asked
   for are no longer kept, a ``snapshot`` (an ``end`` that also carries the
   whole reply) is sent instead of them.
5. A frame larger than ``MAX_MESSAGE_BYTES`` is refused with
   ``message_too_large``; anything else that cannot be decoded gets
   ``bad_message`` or ``unknown_message``. Neither ends the connection (the
   server's transport drops only frames over four times the limit).
6. Provider credentials travel only inside ``start`` and never appear in a repr.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from ._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ._providers import PROVIDERS

PROTOCOL_VERSION = 1
SUBPROTOCOL = f"plancast.v{PROTOCOL_VERSION}"
MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: a security limit, not a tuning knob.
MAX_PROMPT_CHARS = 256 * 1024

StreamMode = Literal["tell", "chat", "continue"]
STREAM_MODES: tuple[str, ...] = get_args(StreamMode)
EndStatus = Literal["finished", "stopped", "failed", "interrupted"]
END_STATUSES: tuple[str, ...] = get_args(EndStatus)

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_id(name: str, value: str) -> None:
    if not _ID_RE.fullmatch(value):
        raise ValueError(f"{name} must be 1-64 letters, digits, '-' or '_'")


def _check_seq(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")


class Message:
    """Base of every protocol message; ``TYPE`` is its wire discriminator."""

    TYPE: ClassVar[str]
    __slots__ = ()


# -- client messages ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderCredentials:
    """One provider's credentials as sent by the client. Never shown in a repr."""

    provider: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_version: str | None = None

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(sorted(PROVIDERS))}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty")


@dataclass(frozen=True, slots=True)
class StartStream(Message):
    """Start a stream on a plan branch. ``request_id`` makes a retry idempotent."""

    TYPE: ClassVar[str] = "start"
    request_id: str
    plan_id: str
    mode: StreamMode
    prompt: str
    model: str
    branch: str = "main"
    credentials: tuple[ProviderCredentials, ...] = field(default=(), repr=False)
    fallback_model: str | None = None  # tried when the model fails before any output

    def __post_init__(self) -> None:
        _check_id("request_id", self.request_id)
        _check_id("plan_id", self.plan_id)
        _check_id("branch", self.branch)
        if self.mode not in STREAM_MODES:
            raise ValueError(f"mode must be one of {', '.join(STREAM_MODES)}")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt is longer than {MAX_PROMPT_CHARS} characters")
        if self.mode != "continue" and not self.prompt.strip():
            raise ValueError("prompt must not be empty")


@dataclass(frozen=True, slots=True)
class Attach(Message):
    """Follow a stream, receiving every event after sequence number ``after``."""

    TYPE: ClassVar[str] = "attach"
    stream_id: str
    after: int = 0

    def __post_init__(self) -> None:
        _check_id("stream_id", self.stream_id)
        _check_seq("after", self.after, 0)


@dataclass(frozen=True, slots=True)
class Stop(Message):
    """Stop a stream. Stopping is a command: a disconnect never stops a stream."""

    TYPE: ClassVar[str] = "stop"
    stream_id: str

    def __post_init__(self) -> None:
        _check_id("stream_id", self.stream_id)


@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    nonce: str = ""


# -- server messages ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started(Message):
    """The reply to ``start``: the stream exists and will run to its end."""

    TYPE: ClassVar[str] = "started"
    request_id: str
    stream_id: str
    plan_id: str
    branch: str


@dataclass(frozen=True, slots=True)
class Error(Message):
    """A request failed. ``stream_id`` is set when the error concerns one stream."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    request_id: str | None = None
    stream_id: str | None = None

    def __post_init__(self) -> None:
        if self.code not in ErrorCode._value2member_map_:
            raise ValueError(f"unknown error code {self.code!r}")


@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    nonce: str = ""


@dataclass(frozen=True, slots=True)
class StreamEvent(Message):
    """Base of the numbered events of one stream."""

    TYPE: ClassVar[str] = ""
    stream_id: str
    seq: int

    def __post_init__(self) -> None:
        _check_seq("seq", self.seq, 1)


@dataclass(frozen=True, slots=True)
class Status(StreamEvent):
    """The stream entered a stage (``planning``, ``building``, ``retrying`` ...)."""

    TYPE: ClassVar[str] = "status"
    stage: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Delta(StreamEvent):
    """A piece of the model's reply, in order."""

    TYPE: ClassVar[str] = "delta"
    text: str = ""


@dataclass(frozen=True, slots=True)
class ChangeEvent(StreamEvent):
    """A file change parsed from the reply became a pending change."""

    TYPE: ClassVar[str] = "change"
    change_id: str = ""
    path: str = ""
    op: str = ""  # "write" or "edit"
    status: str = "pending"  # "pending" or "failed"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class End(StreamEvent):
    """The last event of every stream."""

    TYPE: ClassVar[str] = "end"
    status: EndStatus = "finished"
    error_code: str | None = None
    error_message: str | None = None
    changes: int = 0

    def __post_init__(self) -> None:
        StreamEvent.__post_init__(self)
        if self.status not in END_STATUSES:
            raise ValueError(f"status must be one of {', '.join(END_STATUSES)}")


@dataclass(frozen=True, slots=True)
class Snapshot(End):
    """Ends a replay whose events are no longer kept: the stream's outcome and whole reply.

    Sent instead of the missing events (and their ``end``), so a client is told
    explicitly and still ends with a consistent picture. ``seq`` is the end's.
    """

    TYPE: ClassVar[str] = "snapshot"
    reply: str = ""
    reason: str = ""


CLIENT_MESSAGES: dict[str, type[Message]] = {m.TYPE: m for m in (StartStream, Attach, Stop, Ping)}
SERVER_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (Started, Error, Pong, Status, Delta, ChangeEvent, End, Snapshot)
}
STREAM_EVENTS: tuple[type[StreamEvent], ...] = (Status, Delta, ChangeEvent, End, Snapshot)


# -- codec ----------------------------------------------------------------------------------


def encode(message: Message) -> str:
    """Encode a message as one JSON text frame.

    Raises:
        LocalProtocolError: the encoded frame would exceed ``MAX_MESSAGE_BYTES``.
    """
    data = to_dict(message)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if _utf8_size_over_limit(text):
        raise LocalProtocolError(
            f"{message.TYPE} message is larger than {MAX_MESSAGE_BYTES} bytes",
            code=ErrorCode.MESSAGE_TOO_LARGE,
        )
    return text


def _utf8_size_over_limit(text: str) -> bool:
    # A character is at most 4 UTF-8 bytes: short texts need no encoding to check.
    if len(text) * 4 <= MAX_MESSAGE_BYTES:
        return False
    return (
        len(text) > MAX_MESSAGE_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    )


def to_dict(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"type": message.TYPE}
    for f in fields(message):  # type: ignore[arg-type]
        value = getattr(message, f.name)
        if isinstance(value, tuple):
            value = [_plain(v) for v in value]
        data[f.name] = value
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, ProviderCredentials):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return value


def decode_client(frame: str | bytes) -> Message:
    """Decode a frame sent by a client. See ``decode``."""
    return decode(frame, CLIENT_MESSAGES)


def decode_server(frame: str | bytes) -> Message:
    """Decode a frame sent by the server. See ``decode``."""
    return decode(frame, SERVER_MESSAGES)


def decode(frame: str | bytes, registry: dict[str, type[Message]]) -> Message:
    """Decode one frame into the message type its ``type`` names.

    Args:
        frame: the text (or UTF-8 bytes) of one WebSocket frame.
        registry: the message types this side accepts.

    Returns:
        The validated message.

    Raises:
        RemoteProtocolError: with code ``message_too_large``, ``bad_message`` or
            ``unknown_message``. Its text never repeats field values, so a
            malformed ``start`` cannot echo a key back.
    """
    too_large = (
        _utf8_size_over_limit(frame) if isinstance(frame, str) else len(frame) > MAX_MESSAGE_BYTES
    )
    if too_large:
        raise RemoteProtocolError(
            f"message is larger than {MAX_MESSAGE_BYTES} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
        )
    # Raised outside the except blocks: a chained JSONDecodeError would keep the whole
    # frame (a start message's key included) alive in the error's __context__.
    data: Any = _NOT_JSON
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    if data is _NOT_JSON:
        raise RemoteProtocolError("message is not valid JSON (or nested too deeply)")
    if not isinstance(data, dict):
        raise RemoteProtocolError("message must be a JSON object")
    kind = data.pop("type", None)
    if not isinstance(kind, str):
        raise RemoteProtocolError("message has no string 'type'")
    cls = registry.get(kind)
    if cls is None:
        raise RemoteProtocolError(
            f"unknown message type {kind[:40]!r}", code=ErrorCode.UNKNOWN_MESSAGE
        )
    return _build(cls, data, kind)


def _build(cls: type[Message], data: dict[str, Any], kind: str) -> Message:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise RemoteProtocolError(f"{kind} message is missing field {f.name!r}")
            continue
        kwargs[f.name] = _convert(kind, f.name, hints[f.name], data.pop(f.name))
    if data:
        extra = ", ".join(sorted(repr(k)[:40] for k in data))
        raise RemoteProtocolError(f"{kind} message has unknown field(s) {extra}")
    problem = ""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        problem = str(exc)  # our own validation text: it names fields and rules, never values
    raise RemoteProtocolError(f"invalid {kind} message: {problem}")


_NOT_JSON = object()
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _convert(kind: str, name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(map(str, get_args(hint)))
            raise RemoteProtocolError(f"{kind}.{name} must be one of {allowed}")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _convert(kind, name, inner, value)
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            raise RemoteProtocolError(f"{kind}.{name} must be a list")
        return tuple(_convert(kind, name, item, v) for v in value)
    if hint is ProviderCredentials:
        if not isinstance(value, dict):
            raise RemoteProtocolError(f"{kind}.{name} items must be objects")
        return _build_credentials(kind, name, value)
    expected = {str: str, int: int, bool: bool}.get(hint)
    if expected is None:  # pragma: no cover - a message declared a type the codec lacks
        raise LocalProtocolError(f"no codec for {hint!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise RemoteProtocolError(f"{kind}.{name} must be of type {expected.__name__}")
    if expected is str:
        _check_text(kind, name, value)
    return value


def _check_text(kind: str, name: str, value: str) -> None:
    # JSON can carry lone surrogates ("\ud800") that no UTF-8 frame can: refuse them
    # here, or an echo of the value (a pong's nonce) could not be sent back.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RemoteProtocolError(f"{kind}.{name} is not valid Unicode text") from None


def _build_credentials(kind: str, name: str, value: dict[str, Any]) -> ProviderCredentials:
    allowed = {f.name for f in fields(ProviderCredentials)}
    if not set(value) <= allowed or "provider" not in value:
        raise RemoteProtocolError(f"{kind}.{name} items take {', '.join(sorted(allowed))}")
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            raise RemoteProtocolError(f"{kind}.{name}.{key} must be a string")
        if item is not None:
            _check_text(kind, f"{name}.{key}", item)
    problem = ""
    try:
        return ProviderCredentials(**value)
    except ValueError as exc:
        problem = str(exc)
    raise RemoteProtocolError(f"invalid {kind}.{name}: {problem}")
