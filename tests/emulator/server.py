"""A loopback stand-in for the OpenAI, Azure OpenAI and Anthropic APIs, for tests.

The server under test keeps its real provider SDKs; only their base URL points here. The emulator
answers from a queue of scripted `Reply` objects (one per model request, in arrival order, shared
by all endpoints; a default reply when the queue is empty), records every request, and can be told
to fail in the ways real providers fail: error statuses, stalls, cut connections, malformed chunks.

Routes:
    POST /v1/chat/completions                                  OpenAI
    POST /openai/deployments/{deployment}/chat/completions     Azure OpenAI (?api-version=...)
    POST /openai/v1/chat/completions                           Azure OpenAI "v1" API
    POST /v1/messages                                          Anthropic
    POST /_emulator/replies, POST /_emulator/reset, GET /_emulator/requests
                                                               control, for a separate process

What the real SDKs raise for each fault, measured with openai 3.54.0, anthropic 2.12.0, httpx2
2.16.2 and `max_retries=0`; test_emulator.py asserts every row with the exact class. "create" is
`await client.<...>.create(...)`, "iter" is `async for` over the stream it returned (the
`.stream()` helpers raise the same). Azure (`openai.AsyncAzureOpenAI`) raises exactly what
`openai.AsyncOpenAI` raises. (!) marks an exception the SDK does NOT wrap in its own classes;
JSONDecodeError is `json.JSONDecodeError`, a ValueError.

| Fault (Reply fields)        | raised | openai / Azure          | anthropic                      |
|-----------------------------|--------|-------------------------|--------------------------------|
| status=400                  | create | BadRequestError         | BadRequestError                |
| status=401                  | create | AuthenticationError     | AuthenticationError            |
| status=429 (+ retry_after)  | create | RateLimitError          | RateLimitError                 |
| status=500                  | create | InternalServerError     | InternalServerError            |
| status=503                  | create | InternalServerError     | ServiceUnavailableError [1]    |
| status=529                  | create | InternalServerError     | OverloadedError [1]            |
| first_byte_delay > timeout  | create | APITimeoutError         | APITimeoutError                |
| stall_after=K > timeout     | iter   | APITimeoutError         | httpx2.ReadTimeout (!)         |
| cut_after=K                 | iter   | APIConnectionError [2]  | httpx2.RemoteProtocolError (!) |
| malformed_after=K           | iter   | JSONDecodeError (!)     | JSONDecodeError (!)            |
| error_event_after=K         | iter   | APIError [3]            | APIStatusError [4]             |
| trickle < timeout           | -      | nothing: completes      | nothing: completes             |
| non-stream: stall_after     | create | APITimeoutError         | APITimeoutError                |
| non-stream: cut_after       | create | APIConnectionError      | APIConnectionError             |
| non-stream: malformed_after | create | JSONDecodeError (!)     | JSONDecodeError (!)            |
| finish="length", .stream()  | final  | LengthFinishReasonError | none: stop_reason max_tokens   |

[1] both subclasses of anthropic.InternalServerError.
[2] `__cause__` is httpx2.RemoteProtocolError "peer closed connection without sending complete
    message body (incomplete chunked read)"; anthropic raises that same exception bare.
[3] the base class: no `status_code`; `.body` is the error object, `.type` "server_error".
[4] the base class with `status_code` 200 (the stream's), even for an overloaded_error event: an
    overload mid-stream is NOT an OverloadedError; read `.body["error"]["type"]`.
[5] finish="length" with the `.stream()` helper: `get_final_completion()` raises
    LengthFinishReasonError whenever finish_reason is "length", not only when parsing output.

Retries (default max_retries=2, not in the table): both SDKs retry 429/5xx and honour
`retry-after` of any length (100 s was waited out by both), so cap it yourself; neither retries
a stream that failed after it started. The server's error mapping must therefore catch
`httpx2.TransportError` (ReadTimeout and RemoteProtocolError are both subclasses) and
`json.JSONDecodeError` (a ValueError) around stream iteration, not only the SDKs' own classes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .anthropic_format import AnthropicFormat
from .openai_format import OpenAIFormat
from .script import ROLE_DEFAULT_TEXT, Reply, Turn


class WireFormat(Protocol):
    """What the server needs from a provider format; see openai_format / anthropic_format."""

    name: str
    request_id_header: str

    def validate(self, body: dict[str, Any]) -> str | None: ...
    def preamble(self, turn: Turn) -> list[bytes]: ...
    def delta(self, turn: Turn, text: str) -> bytes: ...
    def ending(self, turn: Turn) -> list[bytes]: ...
    def malformed(self, turn: Turn) -> bytes: ...
    def error_event(self, turn: Turn) -> bytes: ...
    def completion(self, turn: Turn) -> dict[str, Any]: ...
    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the emulator. Headers are lowercased; keys included on purpose."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    # "openai", "azure" (the /openai/... paths), "anthropic", or "unknown" for unrouted paths.
    provider: str

    @property
    def api_key(self) -> str | None:
        """The credential, whichever header carried it (Bearer, x-api-key or Azure's api-key)."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("x-api-key") or self.headers.get("api-key")

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def role(self) -> str:
        """The plancast role that made this request, read from its system prompt."""
        return role_of(self.body)

    @property
    def messages(self) -> list[Any]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def system(self) -> Any:
        """Anthropic's top-level system prompt (a string or a list of blocks), if any."""
        return self.body.get("system") if isinstance(self.body, dict) else None

    @property
    def max_tokens(self) -> int | None:
        if not isinstance(self.body, dict):
            return None
        return self.body.get("max_tokens") or self.body.get("max_completion_tokens")

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class CutConnection(Exception):
    """Raised inside a response body to make uvicorn drop the connection mid-body.

    ASGI offers no way to close a transport; an exception after the response has started makes
    uvicorn close it without the terminating chunk, which is what a client sees when a provider's
    connection breaks.
    """


class _HideCuts(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" record for deliberate cuts only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _contains_cut(exc)


_ROLE = re.compile(r"You are plancast's (\w+)\.")


def role_of(body: Any) -> str:
    """``planner`` unless the system prompt opens with "You are plancast's ROLE."."""
    if not isinstance(body, dict):
        return "planner"
    system = body.get("system")
    if system is None:
        first = next(iter(body.get("messages") or []), None)
        if isinstance(first, dict) and first.get("role") in ("system", "developer"):
            system = first.get("content")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    found = _ROLE.match(system) if isinstance(system, str) else None
    return found.group(1) if found else "planner"


def _contains_cut(exc: BaseException | None) -> bool:
    if isinstance(exc, CutConnection):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains_cut(e) for e in exc.exceptions)
    return False


def _estimate_tokens(body: Mapping[str, Any]) -> int:
    """~4 characters a token over the prompt's text: deterministic, close enough for usage."""

    def text_of(content: Any) -> Iterable[str]:
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and isinstance(block.get("text"), str):
                    yield block["text"]

    chars = sum(len(t) for t in text_of(body.get("system")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            chars += sum(len(t) for t in text_of(message.get("content")))
    return max(1, -(-chars // 4))


async def _client_left_during(request: Request, seconds: float) -> bool:
    """Wait `seconds`, returning early (True) if the client hangs up meanwhile.

    A client that timed out must not leave a handler sleeping on: it would hold the server's
    shutdown and could answer into the next test.
    """
    with anyio.move_on_after(seconds):
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return True
    return False


class Emulator:
    """Scripted provider endpoints plus the recording of what reached them.

    Thread-safe: the test thread pushes and reads while the uvicorn thread serves.
    """

    def __init__(self, default_reply: Reply | None = None) -> None:
        self.default_reply = default_reply or Reply()
        self._cond = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self.base_url = ""
        self.app = self._build_app()

    # --- test-side API ----------------------------------------------------------------------

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next model requests, in order."""
        with self._cond:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget queued replies and recorded requests (between tests)."""
        with self._cond:
            self._queue.clear()
            self._requests.clear()

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._cond:
            return len(self._queue)

    @property
    def all_requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since the last reset, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The planner's requests (``all_requests`` less plancast's other roles).

        The calls a test means are nearly always the planner's; the namer and committer calls
        a stream may add around them are in ``all_requests`` and ``role_requests``.
        """
        with self._cond:
            return [r for r in self._requests if r.role == "planner"]

    def role_requests(self, role: str) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self._requests if r.role == role]

    @property
    def last_request(self) -> RecordedRequest:
        """The planner's latest request."""
        found = self.requests
        if not found:
            raise LookupError("the emulator has received no request")
        return found[-1]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived: for servers that call the model in background."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: sum(r.role == "planner" for r in self._requests) >= count, timeout
            ):
                raise TimeoutError(f"fewer than {count} planner requests after {timeout}s")
            return [r for r in self._requests if r.role == "planner"]

    @property
    def base_url_openai(self) -> str:
        """For `openai.AsyncOpenAI(base_url=...)`: the SDK appends /chat/completions."""
        return f"{self.base_url}/v1"

    @property
    def base_url_anthropic(self) -> str:
        """For `anthropic.AsyncAnthropic(base_url=...)`: the SDK appends /v1/messages."""
        return self.base_url

    @property
    def azure_endpoint(self) -> str:
        """For `openai.AsyncAzureOpenAI(azure_endpoint=...)`: the SDK appends /openai/..."""
        return self.base_url

    # --- serving ----------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def running(
        cls, host: str = "127.0.0.1", port: int = 0, replies: Iterable[Reply] = ()
    ) -> Iterator[Emulator]:
        """Serve on `host:port` (0: an ephemeral port) in a background thread until exit."""
        emulator = cls()
        emulator.push(*replies)
        with emulator.serving(host, port):
            yield emulator

    @contextmanager
    def serving(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[None]:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket says TCP explicitly; with proto 0 each keep-alive request took ~40 ms.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=host,
            port=bound_port,
            # None: leave the process's logging alone (the real server may be configured too).
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        hide_cuts = _HideCuts()
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addFilter(hide_cuts)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="provider-emulator", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the provider emulator did not start")
                time.sleep(0.002)
            self.base_url = (
                f"http://[{host}]:{bound_port}" if ":" in host else f"http://{host}:{bound_port}"
            )
            yield
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            uvicorn_log.removeFilter(hide_cuts)

    # --- the app ----------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        openai_format, anthropic_format = OpenAIFormat(), AnthropicFormat()

        async def openai_chat(request: Request) -> Response:
            return await self._model_call(request, openai_format, "openai")

        async def azure_chat(request: Request) -> Response:
            return await self._model_call(request, openai_format, "azure")

        async def anthropic_messages(request: Request) -> Response:
            return await self._model_call(request, anthropic_format, "anthropic")

        async def unknown(request: Request) -> Response:
            await self._record(request, "unknown")
            body = openai_format.error_body(404, f"Unknown path {request.url.path}")
            return JSONResponse(body, status_code=404)

        async def control_replies(request: Request) -> Response:
            try:
                replies = [Reply.from_json(item) for item in await request.json()]
            except (ValueError, TypeError) as error:  # a bad script is the caller's mistake
                return JSONResponse({"error": str(error)}, status_code=400)
            self.push(*replies)
            return JSONResponse({"pending": self.pending})

        async def control_reset(request: Request) -> Response:
            self.reset()
            return JSONResponse({"pending": 0})

        async def control_requests(request: Request) -> Response:
            everything = request.query_params.get("all") == "1"
            chosen = self.all_requests if everything else self.requests
            return JSONResponse([asdict(r) | {"role": r.role} for r in chosen])

        routes = [
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route(
                "/openai/deployments/{deployment}/chat/completions", azure_chat, methods=["POST"]
            ),
            Route("/openai/v1/chat/completions", azure_chat, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/_emulator/replies", control_replies, methods=["POST"]),
            Route("/_emulator/reset", control_reset, methods=["POST"]),
            Route("/_emulator/requests", control_requests, methods=["GET"]),
            Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
        return Starlette(routes=routes)

    async def _record(self, request: Request, provider: str) -> Any:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=headers,
            body=body,
            provider=provider,
        )
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()
        return body

    def _next_reply(self, body: Any) -> Reply:
        """The first queued reply for the request's role, else that role's default."""
        role = role_of(body)
        with self._cond:
            for n, reply in enumerate(self._queue):
                if reply.role == role:
                    del self._queue[n]
                    return reply
        if role in ROLE_DEFAULT_TEXT:
            return Reply(text=ROLE_DEFAULT_TEXT[role], role=role)
        return self.default_reply

    async def _model_call(self, request: Request, fmt: WireFormat, provider: str) -> Response:
        body = await self._record(request, provider)
        problem = "could not parse the JSON body" if not isinstance(body, dict) else None
        problem = problem or fmt.validate(body)
        if problem:
            # An invalid request does not consume a scripted reply: the real API never ran it.
            return JSONResponse(fmt.error_body(400, problem), status_code=400)

        reply = self._next_reply(body)
        number = next(self._ids)
        if reply.first_byte_delay and await _client_left_during(request, reply.first_byte_delay):
            return Response(status_code=499)  # nobody is listening any more

        headers = {fmt.request_id_header: f"req_emu_{number}", **reply.headers}
        if reply.retry_after is not None:
            headers["retry-after"] = str(reply.retry_after)
        if reply.is_error:
            error = fmt.error_body(reply.status, reply.error_message)
            return JSONResponse(error, status_code=reply.status, headers=headers)

        prefix = "chatcmpl-emu" if fmt.name == "openai" else "msg_emu"
        stream_options = body.get("stream_options") or {}
        turn = Turn(
            reply=reply,
            model=body["model"],
            message_id=f"{prefix}{number:06d}",
            created=int(time.time()),
            input_tokens=(
                reply.input_tokens if reply.input_tokens is not None else _estimate_tokens(body)
            ),
            output_tokens=reply.count_output_tokens(),
            include_usage=bool(stream_options.get("include_usage")),
        )
        if body.get("stream"):
            events = self._stream(fmt, turn)
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        payload, whole = self._whole(fmt, turn)
        headers["content-length"] = str(len(payload))
        return StreamingResponse(whole, media_type="application/json", headers=headers)

    @staticmethod
    async def _stream(fmt: WireFormat, turn: Turn) -> AsyncIterator[bytes]:
        """The SSE body, with the reply's faults injected at their chunk counts."""
        reply = turn.reply
        for event in fmt.preamble(turn):
            yield event
        pieces = reply.pieces()
        for sent in range(len(pieces) + 1):
            if reply.stall_after == sent:
                await asyncio.sleep(reply.stall_for)
            if reply.malformed_after == sent:
                yield fmt.malformed(turn)
            if reply.error_event_after == sent:
                yield fmt.error_event(turn)
                return
            if reply.cut_after == sent:
                raise CutConnection(f"cut after {sent} chunks")
            if sent == len(pieces):
                break
            if sent and reply.trickle:
                await asyncio.sleep(reply.trickle)
            yield fmt.delta(turn, pieces[sent])
        for event in fmt.ending(turn):
            yield event

    @staticmethod
    def _whole(fmt: WireFormat, turn: Turn) -> tuple[bytes, AsyncIterator[bytes]]:
        """A non-stream body (with its length) and its delivery; faults ignore chunk counts.

        Sent through a body iterator with a content-length, so that a stall happens after the
        headers and a cut leaves the client short of the promised length.
        """
        reply = turn.reply
        payload = json.dumps(fmt.completion(turn), ensure_ascii=False).encode()
        if reply.malformed_after is not None:
            payload = payload[: len(payload) // 2]

        async def deliver() -> AsyncIterator[bytes]:
            if reply.stall_after is not None:
                await asyncio.sleep(reply.stall_for)
            if reply.cut_after is not None:
                yield payload[: len(payload) // 2]
                raise CutConnection("cut mid-body")
            yield payload

        return payload, deliver()
