"""A small HTTP server on loopback, started by a test, for the URL loader (no external network).

Routes are a mapping ``path -> Route``; a route answers with a status, headers and a body, and
can trickle its body (``chunk_delay``) to exercise the overall deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = "text/plain; charset=utf-8"
    chunk_size: int = 0  # > 0: send the body in pieces of this size, chunked
    chunk_delay: float = 0.0


@dataclass
class Loopback:
    base_url: str
    hits: list[str]

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def serve(routes: Mapping[str, Route]) -> Iterator[Loopback]:
    """Serve ``routes`` on 127.0.0.1 (a free port) in a thread until the block ends."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits.append(self.path)
            route = routes.get(self.path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(route.status)
            if route.content_type is not None:
                self.send_header("Content-Type", route.content_type)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.chunk_size:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                body = route.body
                try:
                    for i in range(0, len(body), route.chunk_size):
                        piece = body[i : i + route.chunk_size]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.flush()
                        time.sleep(route.chunk_delay)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as the test wants
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Loopback(f"http://127.0.0.1:{server.server_address[1]}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
