"""Fetching a URL for the context: the client fetches, the server never does (DESIGN invariant 5).

Rules:

Rule 1 (schemes): only ``http`` and ``https``, for the URL given and for every redirect. At
        most :data:`MAX_REDIRECTS` redirects are followed, each checked before it is requested.
Rule 2 (limits): the whole fetch, redirects and body included, must finish within
        :data:`FETCH_TIMEOUT_S` seconds (an overall deadline: a per-read timeout never fires on
        a server that trickles). A body larger than :data:`MAX_URL_BYTES` is refused, from its
        ``Content-Length`` or while it streams, so a huge page is never held in memory.
Rule 3 (text only): HTML becomes text (``htmltext.py``); other ``text/*`` types, JSON, XML,
        JavaScript and YAML are kept as they are. Anything else, or a body with a NUL byte, is
        refused as not text. The charset comes from ``Content-Type``, else from an HTML
        ``<meta charset>``, else UTF-8; undecodable bytes are replaced.
Rule 4 (names): the item is named by the URL as typed, without any ``user:password@`` part,
        so credentials in a URL never reach the server.

Every failure is a :class:`UrlFetchError` with a message that names the URL (without
credentials) and says what went wrong.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from plancast.shared import ErrorCode, PlancastError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FETCH_TIMEOUT_S",
    "MAX_REDIRECTS",
    "MAX_URL_BYTES",
    "FetchedUrl",
    "UrlFetchError",
    "fetch_url",
    "is_url",
    "public_name",
]

FETCH_TIMEOUT_S = 15.0
MAX_URL_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5

_SCHEMES = ("http", "https")
_URLISH = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-sh",
    }
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class UrlFetchError(PlancastError):
    """A URL could not be loaded; the message says why (and never holds URL credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.INVALID_REQUEST)


@dataclass(frozen=True, slots=True)
class FetchedUrl:
    """A fetched page: ``name`` is the item name (Rule 4), ``text`` what will be sent."""

    name: str
    final_url: str
    content_type: str
    text: str


def is_url(target: str) -> bool:
    """Whether a ``load`` target is meant as a URL (``scheme://…``), whatever the scheme."""
    return _URLISH.match(target) is not None


def public_name(url: str) -> str:
    """``url`` without a ``user:password@`` part (Rule 4)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise UrlFetchError(
            f"cannot load {public_name(url)}: only http and https URLs can be loaded"
        )


def fetch_url(
    url: str,
    *,
    timeout: float = FETCH_TIMEOUT_S,
    max_bytes: int = MAX_URL_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    transport: httpx.BaseTransport | None = None,
) -> FetchedUrl:
    """Fetch ``url`` and reduce it to text (see the module's rules).

    Args:
        url: An ``http`` or ``https`` URL.
        timeout: The overall deadline in seconds (Rule 2).
        max_bytes: The largest body accepted (Rule 2).
        max_redirects: The most redirects followed (Rule 1).
        transport: An httpx transport, for tests.

    Returns:
        The page as text, named by the URL as given (Rule 4).

    Raises:
        UrlFetchError: a bad scheme, too many redirects, an HTTP error status, a network
            error, the deadline, a body over ``max_bytes``, or a body that is not text.
    """
    import httpx  # only when a URL is loaded: `plancast --help` stays light

    name = public_name(url)
    _check_scheme(url)
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlFetchError(f"cannot load {name}: no answer within {timeout:g} s")
        return remaining

    current = url
    with httpx.Client(follow_redirects=False, transport=transport) as client:
        for _hop in range(max_redirects + 1):
            try:
                request = client.build_request("GET", current, timeout=left())
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise UrlFetchError(f"cannot load {name}: no answer within {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise UrlFetchError(f"cannot load {name}: {type(exc).__name__}") from None
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    _check_scheme(current)
                    continue
                if response.status_code >= 400:
                    raise UrlFetchError(
                        f"cannot load {name}: the server answered {response.status_code} "
                        f"{response.reason_phrase}".rstrip()
                    )
                body = _read_capped(response, name, max_bytes, left, timeout)
                return _to_text(name, public_name(current), response.headers, body)
            finally:
                response.close()
    raise UrlFetchError(f"cannot load {name}: more than {max_redirects} redirects")


def _read_capped(
    response: httpx.Response,
    name: str,
    max_bytes: int,
    left: Callable[[], float],
    timeout: float,
) -> bytes:
    """The body, refusing more than ``max_bytes`` and stopping at the deadline (Rule 2)."""
    import httpx

    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UrlFetchError(f"cannot load {name}: larger than {max_bytes} bytes ({declared})")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise UrlFetchError(f"cannot load {name}: larger than {max_bytes} bytes")
            chunks.append(chunk)
            left()
    except httpx.TimeoutException:
        raise UrlFetchError(f"cannot load {name}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise UrlFetchError(f"cannot load {name}: {type(exc).__name__}") from None
    return b"".join(chunks)


def _charset(content_type: str, body: bytes, is_html: bool) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            candidate = value.strip().strip("\"'")
            if _known_codec(candidate):
                return candidate
    if is_html:
        found = _META_CHARSET.search(body[:4096])
        if found is not None:
            candidate = found.group(1).decode("ascii", "replace")
            if _known_codec(candidate):
                return candidate
    return "utf-8"


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _to_text(name: str, final_url: str, headers: httpx.Headers, body: bytes) -> FetchedUrl:
    """Decode and reduce the body (Rule 3)."""
    from plancast.client.context.htmltext import html_to_text

    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    is_html = media in _HTML_TYPES or (
        not media and body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
    )
    textual = (
        is_html
        or media.startswith("text/")
        or media in _TEXT_TYPES
        or media.endswith(("+json", "+xml"))
    )
    if not media and not is_html:
        textual = True  # no type given: judged by the NUL check below
    if not textual or b"\0" in body[:8192]:
        shown = media or "binary data"
        raise UrlFetchError(f"cannot load {name}: not text ({shown})")
    text = body.decode(_charset(content_type, body, is_html), errors="replace")
    if is_html:
        text = html_to_text(text)
    return FetchedUrl(name, final_url, media or "text/plain", text)
