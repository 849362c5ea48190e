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

TLS: with ``tls_certfile`` and ``tls_keyfile`` the server speaks HTTPS and WSS, TLS 1.3 only
(``tls_context``). The certificate and key are loaded before uvicorn starts, so that a bad
pair is a one-line start-up error naming the setting, not a traceback after the
"Started server process" line. Without TLS, a bind that is not loopback gets one warning:
a TLS-terminating proxy in front is a normal deployment, so it is not refused.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import ssl
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from plancast.server.config import Settings
from plancast.shared import MAX_MESSAGE_BYTES

logger = logging.getLogger("plancast.server")

STARTUP_FAILURE = 3  # uvicorn's exit status when the app did not start


class TLSSettingsError(ValueError):
    """``tls_certfile`` and ``tls_keyfile`` cannot be used; the text names the setting."""


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
    """Serve ``app`` until a stop signal; exit 3 if it could not start.

    Bad TLS settings end the process before it listens, with status 1 and a one-line
    message, like any other bad setting.
    """
    try:
        context = tls_context(settings)
    except TLSSettingsError as exc:
        sys.exit(f"plancast-server: {exc}")
    warn_if_exposed(settings)
    _exit_quietly_on(signal.SIGTERM, signal.SIGINT)
    server = _Server(uvicorn_config(app, settings, context), app)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def uvicorn_config(
    app: Starlette, settings: Settings, context: ssl.SSLContext | None = None
) -> uvicorn.Config:
    """How uvicorn serves the app: the settings' address, TLS context and trusted proxies."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's own context would allow TLS 1.2 and let OpenSSL prompt on the terminal
        # for an encrypted key's passphrase: hand it ours, already loaded.
        ssl_context_factory=None if context is None else _given(context),
        # Given always, so uvicorn's own FORWARDED_ALLOW_IPS variable cannot widen it.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
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


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, TLS 1.3 only; None when TLS is not configured.

    TLS 1.3 only: clients that matter (browsers, httpx, websockets) all speak it, and it
    drops the older versions' weak suites and renegotiation with nothing to configure.

    Raises:
        TLSSettingsError: only one of the two is set, a file cannot be read, the key is
            encrypted, or they are not a PEM certificate chain and its key. The text names
            the setting and the path, never what the files hold.
    """
    certfile, keyfile = settings.tls_certfile, settings.tls_keyfile
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        given, missing = ("tls_certfile", "tls_keyfile")
        if certfile is None:
            given, missing = missing, given
        raise TLSSettingsError(
            f"{given} is set but {missing} is not: TLS needs both the certificate and its key"
        )
    certfile, keyfile = certfile.expanduser(), keyfile.expanduser()
    for name, path in (("tls_certfile", certfile), ("tls_keyfile", keyfile)):
        try:
            path.open("rb").close()
        except OSError as exc:
            raise TLSSettingsError(f"{name}: cannot read {path}: {exc.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(certfile, keyfile, password=_refuse_passphrase)
    except _EncryptedKey:
        raise TLSSettingsError(
            f"tls_keyfile: {keyfile} is encrypted; give the key without a passphrase "
            "(readable by the server's user only)"
        ) from None
    except ssl.SSLError as exc:
        detail = (
            "the key does not match the certificate"
            if exc.reason == "KEY_VALUES_MISMATCH"
            else f"OpenSSL cannot load them ({exc.reason or exc.library or 'unknown error'})"
        )
        raise TLSSettingsError(
            f"tls_certfile ({certfile}) and tls_keyfile ({keyfile}) must be a PEM certificate "
            f"chain and its private key: {detail}"
        ) from None
    return context


class _EncryptedKey(Exception):
    """Raised through OpenSSL by ``_refuse_passphrase``, to tell this case from the others."""


def _refuse_passphrase() -> str:
    """Called by OpenSSL only for an encrypted key; without it OpenSSL would prompt on a tty."""
    raise _EncryptedKey


def _given(
    context: ssl.SSLContext,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """uvicorn's hook for a context of one's own; its default (built from files) goes unused."""

    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server off the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def warn_if_exposed(settings: Settings) -> None:
    """One warning when plain HTTP is offered beyond loopback.

    Over plain HTTP the access token and plans cross the network readable, and whoever is on
    the path can answer a seal request with their own public key and so open the provider
    keys sealed to it. Not refused: a TLS-terminating proxy in front is a normal deployment.
    """
    if settings.tls_certfile is not None or is_loopback(settings.host):
        return
    logger.warning(
        "serving plain HTTP on %s without TLS: access tokens, plans and provider keys are "
        "exposed to anyone on the network path unless a TLS-terminating proxy is in front "
        "(or set tls_certfile and tls_keyfile)",
        settings.host,
    )


def _exit_quietly_on(*signals: signal.Signals) -> None:
    """Rule 2: a stop signal raised again after the shutdown ends the process with 0.

    Before uvicorn takes the signals over (the first moments of start-up), the same handler
    ends the process at once, as the default would.
    """

    def exit_now(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for sig in signals:
        signal.signal(sig, exit_now)
