"""One worker process: it holds one stream's provider keys and makes its model calls.

Rules (``pool.py`` is the server's side):

1. A worker is forked from the fork server, never from the server process. It
   hardens itself first (``harden``), then makes a one-time X25519 key pair and
   sends its public key: ``ready``. Until ``open`` it has never seen a key.
2. ``open`` brings the client's sealed credentials. The worker opens them and
   checks that every provider the stream needs has a key, then answers ``opened``
   or ``error``. Its private key is dropped at once: it opens one seal, ever.
3. ``chat`` runs one model call (``llm.calls``: retries before output, typed
   errors), answered by ``delta`` and ``usage`` messages, then ``done`` or
   ``error``. ``cancel`` abandons it.
4. ``close``, or the server's end of the pipe closing, ends the process. The
   server also kills it by PID when the stream is stopped or times out. Its
   memory, keys included, goes back to the kernel with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import socket
import sys
import time
from typing import Any

from plancast.server.llm import calls
from plancast.server.llm.credentials import Credentials
from plancast.server.llm.errors import ProviderError
from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta
from plancast.server.logs import FORMAT_ENV, KEY_CARRIERS, redacting_handler
from plancast.server.workers.channel import JOIN_CHARS, Channel, ChannelClosed
from plancast.shared import ModelSpec, PlancastError, SealError, open_credentials
from plancast.shared._seal import b64encode

logger = logging.getLogger("plancast.server.worker")

PR_SET_DUMPABLE = 4


def harden() -> None:
    """No core file, no ptrace by other users, no debug logging: a key stays in RAM only."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    # The server's format (text or json: ``logs.configure`` put it in the environment), so that
    # a worker's lines fit the log they share with the server's.
    handler = redacting_handler(os.environ.get(FORMAT_ENV, "text"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in KEY_CARRIERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def preload() -> None:
    """Import what every model call needs, once, in the fork server (not per worker)."""
    import anthropic  # noqa: F401
    import openai  # noqa: F401
    from cryptography.hazmat.primitives import hpke  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import x25519  # noqa: F401
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

    from plancast.server.llm.providers import anthropic_messages, openai_chat  # noqa: F401
    from plancast.server.workers.warmup import warm_up

    warm_up()


def main(sock: socket.socket) -> None:
    """The worker's entry point, called by the fork server in the forked child.

    On uvloop where it is installed (as the server runs): a worker wakes for every delta,
    and uvloop's turn of the loop costs about half of asyncio's (measured: 8 % less CPU per
    delta for the whole worker).
    """
    harden()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a server dependency off Windows
        asyncio.run(_serve(sock))
    else:
        uvloop.run(_serve(sock))


class _KeyScrubber(logging.Filter):
    """Replaces this stream's exact key values, whatever their shape, in every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:  # tracebacks too
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self._secrets)
        return True


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


async def _serve(sock: socket.socket) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    channel = await Channel.over(sock)
    private_key: Any = X25519PrivateKey.generate()
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    channel.send({"t": "ready", "public_key": b64encode(public), "pid": os.getpid()})
    credentials: Credentials | None = None
    secrets: list[str] = []
    call: asyncio.Task[None] | None = None
    timeout, retry = 60.0, calls.DEFAULT_RETRY
    try:
        while True:
            message = await channel.receive()
            kind = message.get("t")
            if kind == "open" and private_key is not None:
                key, private_key = private_key, None  # one seal per worker, ever
                try:
                    credentials = Credentials(
                        open_credentials(
                            str(message["sealed"]),
                            private_key=key,
                            seal_id=str(message["seal_id"]),
                            expires_at=float(message["expires_at"]),
                            now=time.time(),
                        )
                    )
                    secrets = [c.api_key for c in _items(credentials) if c.api_key]
                    logging.getLogger().handlers[0].addFilter(_KeyScrubber(secrets))
                    for provider in message.get("require", []):
                        credentials.require(str(provider))
                    timeout = float(message.get("timeout", timeout))
                    retry = calls.RetryPolicy(**message.get("retry", {}))
                except SealError as exc:
                    channel.send({"t": "error", "code": "bad_seal", "message": str(exc)})
                except PlancastError as exc:
                    channel.send({"t": "error", "code": exc.code, "message": exc.message})
                else:
                    channel.send({"t": "opened"})
                del key
            elif kind == "chat" and credentials is not None and (call is None or call.done()):
                call = asyncio.create_task(
                    _chat(channel, message, credentials, secrets, timeout=timeout, retry=retry)
                )
            elif kind == "cancel" and call is not None:
                call.cancel()
            elif kind == "close":
                break
            await channel.drain()
    except ChannelClosed:
        pass
    finally:
        if call is not None:
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
        if credentials is not None:
            credentials.wipe()
        channel.close()


def _items(credentials: Credentials) -> list[Any]:
    return [c for p in credentials.providers if (c := credentials.get(p)) is not None]


async def _chat(
    channel: Channel,
    message: dict[str, Any],
    credentials: Credentials,
    secrets: list[str],
    *,
    timeout: float,
    retry: calls.RetryPolicy,
) -> None:
    with contextlib.suppress(ChannelClosed):  # the server has gone: nobody to tell
        channel.send(await _run_call(channel, message, credentials, secrets, timeout, retry))
        await channel.drain()


async def _run_call(
    channel: Channel,
    message: dict[str, Any],
    credentials: Credentials,
    secrets: list[str],
    timeout: float,
    retry: calls.RetryPolicy,
) -> dict[str, Any]:
    """Stream one call's output to the server; returns the message that ends it.

    The text that the call produced before it failed is sent before the error, as always.
    """
    call_id = message.get("id")
    deltas = _Deltas(channel, call_id)
    try:
        request = ChatRequest(
            model=ModelSpec.parse(str(message["model"])),
            system=str(message["system"]),
            messages=tuple(ChatMessage(role, content) for role, content in message["messages"]),
            max_tokens=int(message.get("max_tokens", 8192)),
        )
        async for output in calls.stream_chat(request, credentials, timeout=timeout, retry=retry):
            if isinstance(output, TextDelta):
                deltas.add(output.text)
            else:
                deltas.flush()
                channel.send(
                    {
                        "t": "usage",
                        "id": call_id,
                        "input": output.input_tokens,
                        "output": output.output_tokens,
                    }
                )
            await channel.drain()
        deltas.flush()
    except ProviderError as exc:
        deltas.flush()
        return {
            "t": "error",
            "id": call_id,
            "code": exc.code,
            "message": scrub(exc.message, secrets),
            "retry_after": exc.retry_after,
        }
    except PlancastError as exc:
        deltas.flush()
        return {
            "t": "error",
            "id": call_id,
            "code": exc.code,
            "message": scrub(exc.message, secrets),
        }
    except ChannelClosed:
        raise
    except Exception as exc:
        deltas.flush()
        logger.error("worker call failed: %s", type(exc).__name__)
        return {"t": "error", "id": call_id, "code": "internal", "message": "the model call failed"}
    finally:
        deltas.close()  # cancelled: the server abandoned the call, its text goes nowhere
    return {"t": "done", "id": call_id}


class _Deltas:
    """The call's text on its way to the server: one line per turn of the event loop.

    A worker wakes when the provider's bytes arrive, and the SDK then yields every chunk
    those bytes hold before it waits again. The first chunk of a turn goes out at once, so
    a quiet stream's next delta is never held back; the ones parsed after it in the same
    turn ride together in one line when the turn ends. Under load (a burst from the
    provider, a worker that waited for a CPU) the worker writes, and the server reads,
    decodes and publishes, one line and one event where it would have handled many.
    """

    __slots__ = ("_call_id", "_channel", "_loop", "_pending", "_size", "_turn")

    def __init__(self, channel: Channel, call_id: Any) -> None:
        self._channel = channel
        self._call_id = call_id
        self._loop = asyncio.get_running_loop()
        self._pending: list[str] = []
        self._size = 0  # characters pending: a line holds at most JOIN_CHARS of joined text
        self._turn: asyncio.Handle | None = None  # set while this turn has sent a line

    def add(self, text: str) -> None:
        if self._turn is None:
            self._send(text)
            self._turn = self._loop.call_soon(self._turn_over)
            return
        if self._size + len(text) > JOIN_CHARS:
            self.flush()
        self._pending.append(text)
        self._size += len(text)

    def flush(self) -> None:
        """Send what waits now: before usage, the end, or an error, which keep their order."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._size = 0
            self._send(text)

    def close(self) -> None:
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        self._pending.clear()
        self._size = 0

    def _turn_over(self) -> None:
        self._turn = None
        with contextlib.suppress(ChannelClosed):  # the call sees it at its next drain
            self.flush()

    def _send(self, text: str) -> None:
        self._channel.send({"t": "delta", "id": self._call_id, "text": text})
