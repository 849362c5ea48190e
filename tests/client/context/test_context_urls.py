"""``fetch_url``: the client's URL loader, against an HTTP server on loopback."""

from __future__ import annotations

import time

import pytest

from plancast.client.context.urls import (
    MAX_URL_BYTES,
    UrlFetchError,
    fetch_url,
    is_url,
    public_name,
)
from tests.client.loopback_http import Route, serve

HTML = (
    b"<html><head><title>Docs</title><script>evil()</script></head><body><p>Hello</p></body></html>"
)


def test_an_html_page_is_reduced_to_text() -> None:
    with serve({"/docs": Route(HTML, content_type="text/html; charset=utf-8")}) as site:
        page = fetch_url(site.url("/docs"))
    assert page.text == "Docs\n\nHello"
    assert page.name == site.url("/docs") and page.content_type == "text/html"


def test_plain_text_and_json_are_kept_as_they_are() -> None:
    routes = {
        "/a.txt": Route(b"line 1\n  line 2\n", content_type="text/plain"),
        "/a.json": Route(b'{"a": "<p>"}', content_type="application/json"),
        "/untyped": Route(b"just bytes", content_type=None),
    }
    with serve(routes) as site:
        assert fetch_url(site.url("/a.txt")).text == "line 1\n  line 2\n"
        assert fetch_url(site.url("/a.json")).text == '{"a": "<p>"}'
        assert fetch_url(site.url("/untyped")).text == "just bytes"


def test_charsets_from_the_header_and_from_meta() -> None:
    latin = "café".encode("latin-1")
    routes = {
        "/h": Route(latin, content_type="text/plain; charset=iso-8859-1"),
        "/m": Route(
            b'<html><head><meta charset="iso-8859-1"></head><body>' + latin + b"</body></html>",
            content_type="text/html",
        ),
        "/bad": Route(b"caf\xe9", content_type="text/plain; charset=no-such-codec"),
    }
    with serve(routes) as site:
        assert fetch_url(site.url("/h")).text == "café"
        assert fetch_url(site.url("/m")).text == "café"
        assert fetch_url(site.url("/bad")).text == "caf\ufffd"  # UTF-8 with replacement


def test_redirects_are_followed_up_to_five() -> None:
    routes = {f"/r{i}": Route(status=302, headers={"Location": f"/r{i + 1}"}) for i in range(6)}
    routes["/r5"] = Route(b"arrived", content_type="text/plain")
    routes["/r6"] = Route(b"too far", content_type="text/plain")
    routes["/loop"] = Route(status=301, headers={"Location": "/loop"})
    with serve(routes) as site:
        page = fetch_url(site.url("/r0"))
        assert page.text == "arrived" and page.final_url == site.url("/r5")
        assert page.name == site.url("/r0")  # named by the URL as given
        with pytest.raises(UrlFetchError, match="more than 5 redirects"):
            fetch_url(site.url("/loop"))
        with pytest.raises(UrlFetchError, match="more than 1 redirects"):
            fetch_url(site.url("/r3"), max_redirects=1)


def test_a_redirect_to_another_scheme_is_refused() -> None:
    routes = {"/ftp": Route(status=302, headers={"Location": "ftp://127.0.0.1/file"})}
    with serve(routes) as site:
        with pytest.raises(UrlFetchError, match="only http and https"):
            fetch_url(site.url("/ftp"))


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:x"])
def test_other_schemes_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(UrlFetchError, match="only http and https"):
        fetch_url(url)


def test_the_size_cap_from_the_header_and_while_streaming() -> None:
    big = b"x" * (MAX_URL_BYTES + 1)
    routes = {
        "/declared": Route(big),
        "/chunked": Route(big, chunk_size=256 * 1024),
        "/small": Route(b"y" * 1000),
    }
    with serve(routes) as site:
        with pytest.raises(UrlFetchError, match="larger than 2097152 bytes"):
            fetch_url(site.url("/declared"))
        with pytest.raises(UrlFetchError, match="larger than 2097152 bytes"):
            fetch_url(site.url("/chunked"))
        with pytest.raises(UrlFetchError, match="larger than 100 bytes"):
            fetch_url(site.url("/small"), max_bytes=100)


def test_an_overall_deadline_even_when_the_server_trickles() -> None:
    # Each piece arrives well within a per-read timeout; the whole never would.
    routes = {"/slow": Route(b"z" * 200, chunk_size=10, chunk_delay=0.1)}
    with serve(routes) as site:
        started = time.monotonic()
        with pytest.raises(UrlFetchError, match="no answer within 0.5 s"):
            fetch_url(site.url("/slow"), timeout=0.5)
        assert time.monotonic() - started < 1.5


def test_errors_name_the_problem() -> None:
    routes = {
        "/img": Route(b"\x89PNG\r\n\x1a\n\x00\x00", content_type="image/png"),
        "/nul": Route(b"text\x00with nul", content_type="text/plain"),
        "/gone": Route(status=410, content_type=None),
    }
    with serve(routes) as site:
        with pytest.raises(UrlFetchError, match=r"not text \(image/png\)"):
            fetch_url(site.url("/img"))
        with pytest.raises(UrlFetchError, match="not text"):
            fetch_url(site.url("/nul"))
        with pytest.raises(UrlFetchError, match="answered 410"):
            fetch_url(site.url("/gone"))
        with pytest.raises(UrlFetchError, match="answered 404"):
            fetch_url(site.url("/missing"))
    with pytest.raises(UrlFetchError, match="ConnectError"):
        fetch_url(site.url("/docs"))  # the server is gone


def test_credentials_in_a_url_never_reach_the_name_or_a_message() -> None:
    with serve({"/p": Route(b"ok")}) as site:
        url = site.url("/p").replace("http://", "http://me:hunter2@")
        page = fetch_url(url)
        assert page.text == "ok" and "hunter2" not in page.name and page.name == site.url("/p")
        with pytest.raises(UrlFetchError) as caught:
            fetch_url(url.replace("/p", "/nope"))
        assert "hunter2" not in caught.value.message


def test_is_url_and_public_name() -> None:
    assert is_url("https://x.org/a") and is_url("ftp://x") and is_url("HTTP://X")
    assert not is_url("src/app.py") and not is_url("c:/x") and not is_url("-")
    assert public_name("https://u:p@x.org:8080/a?q=1#f") == "https://x.org:8080/a?q=1#f"
    assert public_name("https://x.org/a@b") == "https://x.org/a@b"
