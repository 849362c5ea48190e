"""Running the app under uvicorn, and how the process ends.

uvicorn handles SIGTERM and SIGINT while it serves: it stops listening, closes the open
connections, then runs the app's lifespan shutdown, where the streams drain for up to
``shutdown_grace_s``. Two changes to its behaviour:

1. A second stop signal during the drain interrupts the streams still running at once, as a
   second Ctrl-C forces uvicorn's own waits ("CTRL+C to force quit").
2. The process exits with status 0 after a graceful shutdown. uvicorn raises the signal
   again once it is done, for the handlers it found; with Python's defaults that kills the
   process with -SIGTERM (or prints a KeyboardInterrupt traceback), which a supervisor would
   read as a crash.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from plancast.server.config import Settings
from plancast.shared import MAX_MESSAGE_BYTES

STARTUP_FAILURE = 3  # uvicorn's exit status when the app did not start


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        streams = getattr(self._app.state, "streams", None)  # set once the app has started
        if self.should_exit and streams is not None:
            streams.hurry()  # Rule 1; it only sets a flag, as a signal handler may
        super().handle_exit(sig, frame)


def serve(app: Starlette, settings: Settings) -> None:
    """Serve ``app`` until a stop signal; exit 3 if it could not start."""
    _exit_quietly_on(signal.SIGTERM, signal.SIGINT)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        # The transport's hard cap sits above the protocol limit, so that a frame a
        # little too large gets a typed message_too_large error, not a dropped socket.
        ws_max_size=4 * MAX_MESSAGE_BYTES,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config, app)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _exit_quietly_on(*signals: signal.Signals) -> None:
    """Rule 2: a stop signal raised again after the shutdown ends the process with 0.

    Before uvicorn takes the signals over (the first moments of start-up), the same handler
    ends the process at once, as the default would.
    """

    def exit_now(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for sig in signals:
        signal.signal(sig, exit_now)
