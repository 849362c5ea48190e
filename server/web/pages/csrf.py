"""Cross-site request forgery: every POST from a page proves it came from one of ours.

Two checks, both before a form does anything:

1. The request's ``Origin`` (else its ``Referer``) names this server: its host and port equal
   the request's ``Host``, or it is one of ``allowed_origins`` (for a proxy that rewrites
   ``Host``). A request that sends neither is refused.
2. The form's ``csrf`` field is HMAC-SHA256 keyed by the browser's secret cookie: the session
   token once signed in, the pre-session key before (``cookies.py``). A page on another origin
   can read neither cookie, so it cannot make the token, and the token tells nothing about the
   cookie it came from. Nothing is stored, no server secret is needed (replicas share none but
   the database), and the token changes with each session.

With SameSite=Strict cookies, a browser sends no cookie with another site's form at all;
these checks are the line behind that one.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from plancast.server.errors import Forbidden

FIELD = "csrf"
_LABEL = b"plancast web form"


def token(secret: str) -> str:
    """The CSRF token for forms sent with the cookie ``secret``."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).hexdigest()


def check(request: Request, form: dict[str, str], secret: str | None) -> None:
    """Refuse a POST that is not from one of this server's pages.

    Raises:
        Forbidden: another origin, no origin, or a missing or wrong token.
    """
    if not _same_origin(request):
        raise Forbidden("this form was sent from another site: open the page here and retry")
    sent = form.get(FIELD, "")
    if secret is None or not hmac.compare_digest(sent.encode(), token(secret).encode()):
        raise Forbidden("this form has expired (or was not sent from its page): reload and retry")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}"
    if origin in request.app.state.settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host")
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host
