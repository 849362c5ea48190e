"""A loopback TCP proxy that a test can cut, to drop client connections on purpose.

Given several ports, it is also a load balancer without affinity: each new connection goes to
the next of them in turn, as round-robin balancing in front of server replicas would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class CuttableProxy:
    def __init__(self, *target_ports: int) -> None:
        self._targets = [("127.0.0.1", port) for port in target_ports]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0
        self.routed: list[int] = []  # the target port of each connection, in order
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            target = self._targets[self.connections % len(self._targets)]
            try:
                upstream = socket.create_connection(target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
                self.connections += 1
                self.routed.append(target[1])
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection at once, as a network failure would."""
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for s in doomed:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


@contextlib.contextmanager
def cuttable_proxy(*target_ports: int) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(*target_ports)
    try:
        yield proxy
    finally:
        proxy.close()
