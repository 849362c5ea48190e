"""The fork server: a clean interpreter that forks one worker process per stream.

Why not fork the server itself: a fork copies the parent's memory, and the
server's memory holds other streams' plans and, for a moment, request bytes.
Why not ``multiprocessing``'s forkserver: it re-runs the parent's ``__main__``
in every child and pickles arguments; this is 60 lines with neither.

Rules:

1. The server starts it once (``ForkServer.shared``) with ``sys.executable``,
   an environment without any provider key, and one socket: the control socket.
   It imports the SDKs (``child``'s imports) and says ``ready``.
2. For each request on the control socket, which carries one socket via
   SCM_RIGHTS, it forks; the child runs ``child.main`` on that socket and exits.
   The parent closes its copy and answers the child's PID (4 bytes).
3. Children are reaped by the kernel (SIGCHLD ignored). The server watches a
   worker through a pidfd and kills it by that pidfd.
4. When the server goes away, even killed, the kernel closes its end of the
   control socket and the fork server exits; its workers see their pipes close
   and exit too. (Not PR_SET_PDEATHSIG: it fires when the *thread* that started
   the fork server ends, and the server may start it from any thread.)
"""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping

logger = logging.getLogger("plancast.server.workers")

_KEYISH_ENV = re.compile(r"(?i).*(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|DATABASE_URL)")


def clean_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for the fork server: nothing that looks like a key or a token.

    ``PLANCAST_DATABASE_URL`` goes too: it can carry the database password, and a model
    worker never touches the database.
    """
    return {k: v for k, v in environ.items() if not _KEYISH_ENV.match(k)}


class ForkServer:
    """The server's end of the control socket. One per server process, shared by its apps."""

    _shared: ForkServer | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self._control = ours
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plancast.server.workers.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=clean_environment(os.environ),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._ready = False

    @classmethod
    def shared(cls) -> ForkServer:
        """The process's fork server, started on first use (and again if it died)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared.process.poll() is not None:
                cls._shared = cls()
            return cls._shared

    def spawn(self, sock: socket.socket) -> int:
        """Fork a worker that will speak on ``sock``; returns its PID. Blocking."""
        with self._lock:
            if not self._ready:
                if self._control.recv(6) != b"ready\n":
                    raise OSError("the fork server failed to start")
                self._ready = True
            socket.send_fds(self._control, [b"f"], [sock.fileno()])
            answer = self._recv_exactly(4)
        (pid,) = struct.unpack("!i", answer)
        return pid

    def _recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._control.recv(size - len(data))
            if not chunk:
                raise OSError("the fork server has gone")
            data += chunk
        return data

    def close(self) -> None:
        self._control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main(control_fd: int) -> None:
    """The fork server's loop (run as ``python -m plancast.server.workers.forkserver FD``)."""
    control = socket.socket(fileno=control_fd)
    from plancast.server.workers import child

    child.preload()  # the SDKs, imported and warmed once here rather than in every worker
    gc.collect()
    gc.freeze()  # the preloaded objects stay out of the workers' collections: fewer page copies

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    control.sendall(b"ready\n")
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not message:
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            control.sendall(struct.pack("!i", -1))
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                child.main(socket.socket(fileno=fds[0]))
                code = 0
            finally:
                os._exit(code)
        os.close(fds[0])
        control.sendall(struct.pack("!i", pid))


if __name__ == "__main__":
    main(int(sys.argv[1]))
