"""The stream protocol spoken over the WebSocket at ``/api/v1/streams``.

Rules:

1. The WebSocket subprotocol names the version (``plancast.v1``); a server that
   does not speak it refuses the handshake.
2. Each frame is one JSON object with a ``type``. Messages are frozen dataclasses
   that validate when built, so an invalid message cannot exist on either side.
3. Client messages: ``new_seal``, ``start``, ``attach``, ``stop``, ``ping``.
   Server messages: ``seal``, ``started``, ``error``, ``pong`` and the stream events.
4. Stream events (``delta``, ``status``, ``change``, ``end``) carry the stream id
   and a sequence number that starts at 1 and grows by 1 with no gap. A client
   that has seen events up to N attaches with ``after=N`` and gets exactly the
   rest. ``end`` is always the last event of a stream. When the events asked
   for are no longer kept, a ``snapshot`` (an ``end`` that also carries the
   whole reply) is sent instead of them.
4a. Several consecutive events of one stream may travel in one ``events``
   frame (``EventBatch``): the server packs what is ready to send at once, as
   in a catch-up, with ``pack_events``. A batch holds each event's own frame
   object, unchanged, so a receiver handles it exactly as those frames in
   order. ``encode`` caches a stream event's text on the event: an event is
   encoded once, however many watchers and replays send it.
5. A frame larger than ``MAX_MESSAGE_BYTES`` is refused with
   ``message_too_large``; anything else that cannot be decoded gets
   ``bad_message`` or ``unknown_message``. Neither ends the connection (the
   server's transport drops only frames over four times the limit).
6. Provider credentials travel only inside ``start``, sealed to the worker process
   that will run the stream (``_seal.py``); the server cannot read them. The seal is
   asked for on the same connection (``new_seal``, answered by ``seal``), so the
   ``start`` reaches the server process that holds its worker, whichever replica.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from ._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ._seal import MAX_SEALED_CHARS

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
    """Base of every protocol message; ``TYPE`` is its wire discriminator.

    ``_encoded`` is not a field: ``encode`` keeps a stream event's frame text
    there (messages are frozen, so the text can never go stale).
    """

    TYPE: ClassVar[str]
    __slots__ = ("_encoded",)


# -- client messages ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSeal(Message):
    """Ask for a seal: a one-time worker key to seal the next ``start``'s credentials to.

    Answered by ``seal`` (or ``error``) with the same ``request_id``, the one the ``start``
    will carry. The seal lives in the server process this connection reaches.
    """

    TYPE: ClassVar[str] = "new_seal"
    request_id: str

    def __post_init__(self) -> None:
        _check_id("request_id", self.request_id)


@dataclass(frozen=True, slots=True)
class StartStream(Message):
    """Start a stream on a plan branch. ``request_id`` makes a retry idempotent."""

    TYPE: ClassVar[str] = "start"
    request_id: str
    plan_id: str
    mode: StreamMode
    prompt: str
    model: str
    seal_id: str
    sealed: str = field(repr=False)  # the credentials, sealed to the seal's worker (_seal.py)
    branch: str = "main"
    fallback_model: str | None = None  # tried when the model fails before any output

    def __post_init__(self) -> None:
        _check_id("request_id", self.request_id)
        _check_id("plan_id", self.plan_id)
        _check_id("branch", self.branch)
        _check_id("seal_id", self.seal_id)
        if not 0 < len(self.sealed) <= MAX_SEALED_CHARS:
            raise ValueError(f"sealed must be 1-{MAX_SEALED_CHARS} characters")
        if self.mode not in STREAM_MODES:
            raise ValueError(f"mode must be one of {', '.join(STREAM_MODES)}")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt is longer than {MAX_PROMPT_CHARS} characters")
        if "\x00" in self.prompt:  # no text column of PostgreSQL can hold it
            raise ValueError("prompt must not contain NUL characters")
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
class SealOffer(Message):
    """The answer to ``new_seal``: the worker key to seal the stream's credentials to."""

    TYPE: ClassVar[str] = "seal"
    request_id: str
    seal_id: str  # also the id of the stream that a start with this seal makes
    public_key: str  # the worker's X25519 public key, base64url without padding
    expires_at: float  # Unix time; a start after it is bad_seal
    suite: str  # SEAL_SUITE; a client refuses any other

    def __post_init__(self) -> None:
        _check_id("request_id", self.request_id)
        _check_id("seal_id", self.seal_id)
        if not math.isfinite(self.expires_at):
            raise ValueError("expires_at must be a finite number")
        if not self.public_key or not self.suite:
            raise ValueError("public_key and suite must not be empty")


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
    op: str = ""  # "write", "edit", "move" or "delete"
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


BATCHED_EVENTS: tuple[type[StreamEvent], ...] = (Status, Delta, ChangeEvent, End)
"""The events an ``events`` batch may hold: a ``snapshot`` always travels alone."""
_BATCHED_TYPES: dict[str, type[StreamEvent]] = {m.TYPE: m for m in BATCHED_EVENTS}


@dataclass(frozen=True, slots=True)
class EventBatch(Message):
    """Consecutive events of one stream in one frame, each exactly as its own frame would be.

    The server sends one when several events are ready at once (a catch-up, a
    burst); a receiver handles it as those events, in order. The events carry
    consecutive ``seq``s of ``stream_id``, and only the last may be an ``end``.
    """

    TYPE: ClassVar[str] = "events"
    stream_id: str
    events: tuple[StreamEvent, ...]

    def __post_init__(self) -> None:
        _check_id("stream_id", self.stream_id)
        if not self.events:
            raise ValueError("events must not be empty")
        first, last = self.events[0].seq, len(self.events) - 1
        for n, event in enumerate(self.events):
            if type(event) not in BATCHED_EVENTS:
                raise ValueError("events may hold only status, delta, change and end events")
            if event.stream_id != self.stream_id:
                raise ValueError("every event in events must be of the batch's stream_id")
            if event.seq != first + n:
                raise ValueError("the seqs in events must be consecutive")
            if n != last and type(event) is End:
                raise ValueError("only the last event in events may be an end")


CLIENT_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (NewSeal, StartStream, Attach, Stop, Ping)
}
_SERVER_TYPES = (SealOffer, Started, Error, Pong, Status, Delta, ChangeEvent, End, Snapshot)
SERVER_MESSAGES: dict[str, type[Message]] = {m.TYPE: m for m in (*_SERVER_TYPES, EventBatch)}
STREAM_EVENTS: tuple[type[StreamEvent], ...] = (Status, Delta, ChangeEvent, End, Snapshot)


# -- codec ----------------------------------------------------------------------------------


def encode(message: Message) -> str:
    """Encode a message as one JSON text frame.

    A stream event's text is computed once and kept on the event, so encoding
    it again (for every watcher, every replay) costs nothing.

    Raises:
        LocalProtocolError: the encoded frame would exceed ``MAX_MESSAGE_BYTES``.
    """
    try:
        return message._encoded  # type: ignore[no-any-return]
    except AttributeError:
        pass
    if type(message) is EventBatch:
        text = _batch_text(message.stream_id, [encode(e) for e in message.events])
    else:
        text = json.dumps(to_dict(message), ensure_ascii=False, separators=(",", ":"))
    if _utf8_size_over_limit(text):
        raise LocalProtocolError(
            f"{message.TYPE} message is larger than {MAX_MESSAGE_BYTES} bytes",
            code=ErrorCode.MESSAGE_TOO_LARGE,
        )
    if isinstance(message, StreamEvent):
        object.__setattr__(message, "_encoded", text)
    return text


def pack_events(
    events: Iterable[StreamEvent], *, max_bytes: int = MAX_MESSAGE_BYTES
) -> Iterator[str]:
    """The frames that carry ``events``, in order.

    A run of consecutive events of one stream that fits in ``max_bytes`` becomes
    an ``events`` batch; an event that travels alone (a ``snapshot``, one too
    large to share a frame, the only event of its run) is its own plain frame,
    which ``encode`` keeps within ``MAX_MESSAGE_BYTES``.

    Args:
        events: stream events in the order they are to be received.
        max_bytes: the largest batch frame, in UTF-8 bytes (at most ``MAX_MESSAGE_BYTES``).

    Yields:
        Frame texts. A frame is yielded as soon as it is complete.

    Raises:
        LocalProtocolError: an event is too large for any frame (``encode``). The
            frames for the events before it have been yielded first.
    """
    run: list[str] = []
    run_stream, next_seq, room = "", 0, 0
    for event in events:
        try:
            text = encode(event)
        except LocalProtocolError:
            if run:
                yield run[0] if len(run) == 1 else _batch_text(run_stream, run)
            raise
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        batchable = type(event) in BATCHED_EVENTS and (
            event.stream_id == run_stream or _ID_RE.fullmatch(event.stream_id) is not None
        )
        if run and (
            not batchable or event.stream_id != run_stream or event.seq != next_seq or size >= room
        ):
            yield run[0] if len(run) == 1 else _batch_text(run_stream, run)
            run = []
        if not batchable:
            yield text
            continue
        if not run:
            run_stream = event.stream_id
            room = max_bytes - _BATCH_OVERHEAD - len(run_stream) + 1  # the first has no comma
        run.append(text)
        room -= size + 1
        next_seq = -1 if type(event) is End else event.seq + 1  # an end closes its batch
    if run:
        yield run[0] if len(run) == 1 else _batch_text(run_stream, run)


_BATCH_OVERHEAD = len('{"type":"events","stream_id":"","events":[]}')
_STREAM_EVENT_TYPES: dict[str, type[StreamEvent]] = {m.TYPE: m for m in STREAM_EVENTS}
_BODY_FIELDS: dict[type[StreamEvent], list[str]] = {
    m: [f.name for f in fields(m)][2:]  # type: ignore[arg-type]  # after stream_id and seq
    for m in STREAM_EVENTS
}


def event_body(event: StreamEvent) -> str:
    """The event's fields but ``type``, ``stream_id`` and ``seq``, as a compact JSON object.

    Cut from the event's frame text (``encode``), not encoded again. With the
    three fields it leaves out, ``event_from_body`` rebuilds the event, frame
    text included. An event too large for a frame is encoded here, uncached.
    """
    head = _frame_head(event.TYPE, event.stream_id, event.seq)
    try:
        text = encode(event)
    except LocalProtocolError:
        text = ""
    if text.startswith(head):
        return "{" + text[len(head) + 1 :] if text[len(head)] == "," else "{}"
    data = to_dict(event)  # a stream_id that JSON must escape: not cut from the frame
    for key in ("type", "stream_id", "seq"):
        del data[key]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def event_from_body(kind: str, stream_id: str, seq: int, body: str) -> StreamEvent:
    """The event that ``event_body`` took ``body`` from, with its frame text cached.

    The frame text is joined from ``body`` rather than encoded again, when
    ``body`` holds exactly the event's fields in their order (as ``event_body``
    writes them); otherwise ``encode`` makes it when first asked.

    Raises:
        KeyError: ``kind`` is not a stream event type.
        ValueError, TypeError: ``body`` does not make a valid event of ``kind``.
    """
    cls = _STREAM_EVENT_TYPES[kind]
    data = json.loads(body)
    event = cls(stream_id=stream_id, seq=seq, **data)
    if list(data) == _BODY_FIELDS[cls] and _ID_RE.fullmatch(stream_id):
        text = _frame_head(kind, stream_id, seq) + ("}" if body == "{}" else "," + body[1:])
        if not _utf8_size_over_limit(text):
            object.__setattr__(event, "_encoded", text)
    return event


def _frame_head(kind: str, stream_id: str, seq: int) -> str:
    """How an event's frame text starts, up to the end of its ``seq``."""
    return '{"type":"' + kind + '","stream_id":"' + stream_id + '","seq":' + str(seq)


def _batch_text(stream_id: str, texts: list[str]) -> str:
    # Exactly json.dumps of the batch's dict: the same separators, the same key order.
    return '{"type":"events","stream_id":"' + stream_id + '","events":[' + ",".join(texts) + "]}"


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
    if isinstance(value, Message):
        return to_dict(value)
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
    if cls is StartStream and "credentials" in data:
        raise RemoteProtocolError(
            "start messages carry no plain credentials: seal them to the stream's worker "
            "(seal_id and sealed; see docs/protocol.md)"
        )
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
    if hint is StreamEvent:  # an item of an events batch: one of the batchable events
        if not isinstance(value, dict):
            raise RemoteProtocolError(f"{kind}.{name} must hold JSON objects")
        item_kind = value.pop("type", None)
        cls = _BATCHED_TYPES.get(item_kind) if isinstance(item_kind, str) else None
        if cls is None:
            raise RemoteProtocolError(
                f"{kind}.{name} may hold only {', '.join(_BATCHED_TYPES)} events"
            )
        return _build(cls, value, item_kind)  # type: ignore[arg-type]
    if hint is float:  # JSON writes a whole number without a point: an int is a float here
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise RemoteProtocolError(f"{kind}.{name} must be a number")
        try:
            number = float(value)  # an integer too large for a float raises here
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise RemoteProtocolError(f"{kind}.{name} must be a finite number")
        return number
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
