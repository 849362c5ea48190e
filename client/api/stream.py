"""The WebSocket half of the API client: start, follow and stop streams."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, TypeVar

from plancast.client.api.errors import ApiError, ConnectionLost, ServerUnavailable
from plancast.client.config import ClientConfig
from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SUBPROTOCOL,
    Attach,
    End,
    Error,
    ErrorCode,
    EventBatch,
    Message,
    NewSeal,
    Pong,
    SealOffer,
    Started,
    StartStream,
    Stop,
    StreamEvent,
    decode_server,
    encode,
)

ANSWER_TIMEOUT_S = 30.0
"""How long ``new_seal`` and ``start`` wait for their answer. Both take well under a second; a
server silent for this long is treated as a dropped connection."""

_Answer = TypeVar("_Answer", SealOffer, Started)

# The server's close codes (docs/protocol.md) and what they mean to a user.
_CLOSE_CODES = {
    4400: ErrorCode.UNSUPPORTED_PROTOCOL,
    4401: ErrorCode.UNAUTHORIZED,
    4403: ErrorCode.FORBIDDEN,
}


class StreamConnection:
    """One WebSocket to the server. Use as a context manager."""

    def __init__(self, config: ClientConfig, *, open_timeout: float = 10.0) -> None:
        self._config = config
        self._open_timeout = open_timeout
        self._ws: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> StreamConnection:
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self._config.token}"} if self._config.token else {}
        try:
            self._ws = self._stack.enter_context(
                connect(
                    self._config.ws_url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    additional_headers=headers,
                    compression=None,
                    max_size=MAX_MESSAGE_BYTES,
                    open_timeout=self._open_timeout,
                )
            )
        except InvalidStatus as exc:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                f"the server refused the stream connection (HTTP {exc.response.status_code})",
            ) from None
        except (OSError, InvalidHandshake, TimeoutError):
            raise ServerUnavailable(self._config.server) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def send(self, message: Message) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(encode(message))
        except (ConnectionClosed, OSError):
            raise ConnectionLost("the connection to the server dropped") from None

    def receive(self, timeout: float | None = None) -> Message:
        """The next message from the server (several events may come as one ``EventBatch``).

        Raises:
            ApiError: the connection closed (with its close code's meaning).
            TimeoutError: nothing arrived within ``timeout``.
        """
        from websockets.exceptions import ConnectionClosed

        try:
            frame = self._ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code in _CLOSE_CODES:
                raise ApiError(_CLOSE_CODES[code], reason or "the server refused") from None
            raise ConnectionLost("the connection to the server dropped") from None
        except OSError:
            raise ConnectionLost("the connection to the server dropped") from None
        return decode_server(frame)

    def new_seal(self, request_id: str) -> SealOffer:
        """Ask for a seal on this connection: the start that uses it must be sent on it too.

        Raises:
            ApiError: the server refused (shutting down, too many unused seals …).
        """
        self.send(NewSeal(request_id=request_id))
        return self._answer(SealOffer, request_id)

    def start(self, request: StartStream) -> Started:
        """Send ``start`` and wait for ``started``.

        Raises:
            ApiError: the server refused (busy branch, unknown plan, missing key …).
        """
        self.send(request)
        return self._answer(Started, request.request_id)

    def _answer(self, kind: type[_Answer], request_id: str) -> _Answer:
        """The server's answer to the request ``request_id``, or the error it sent instead.

        Raises:
            ApiError: the server refused.
            ConnectionLost: no answer within ``ANSWER_TIMEOUT_S`` (the caller may retry: the
                request id makes that safe).
        """
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            try:
                message = self.receive(timeout=max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise ConnectionLost("the server did not answer in time") from None
            if isinstance(message, kind) and message.request_id == request_id:
                return message
            if isinstance(message, Error):
                raise ApiError(ErrorCode(message.code), message.message)

    def attach(self, stream_id: str, after: int = 0) -> None:
        self.send(Attach(stream_id=stream_id, after=after))

    def stop(self, stream_id: str) -> None:
        self.send(Stop(stream_id=stream_id))

    def events(self, stream_id: str) -> Iterator[StreamEvent]:
        """The events of ``stream_id`` in order, ending with its ``End``.

        The events of an ``events`` batch come one by one, as if each had had
        its own frame.

        Raises:
            ApiError: the server sent an error about this stream.
        """
        while True:
            message = self.receive()
            if isinstance(message, EventBatch):
                if message.stream_id == stream_id:
                    for event in message.events:
                        yield event
                        if isinstance(event, End):  # a batch holds an end only last
                            return
            elif isinstance(message, StreamEvent) and message.stream_id == stream_id:
                yield message
                if isinstance(message, End):
                    return
            elif isinstance(message, Error) and message.stream_id in (stream_id, None):
                if message.code == ErrorCode.CONFLICT:
                    continue  # "already ended" after a stop: the End event follows
                raise ApiError(ErrorCode(message.code), message.message)
            elif isinstance(message, Pong):
                continue
