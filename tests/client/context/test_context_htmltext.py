"""``html_to_text``: HTML pages reduced to readable text for URL items."""

from __future__ import annotations

from plancast.client.context.htmltext import html_to_text

PAGE = """<!doctype html>
<html><head><title> The   page </title>
<style>p { color: red }</style>
<script>var s = "<p>not text</p>";</script>
<meta charset="utf-8"><link rel="stylesheet" href="x.css">
</head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Install &amp; run</h1>
<p>First paragraph,
   wrapped   in the source.</p>
<p>Second<br>with a break</p>
<ul><li>one</li><li>two <b>bold</b></li></ul>
<pre>  def f():
      return 1

  f()</pre>
<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
<noscript>enable js</noscript><svg><text>icon</text></svg>
<p>tail &lt;ok&gt;</p>
"""


def test_a_page_becomes_paragraphs() -> None:
    assert html_to_text(PAGE) == (
        "The page\n\n"
        "Home\n\n"
        "# Install & run\n\n"
        "First paragraph, wrapped in the source.\n\n"
        "Second\nwith a break\n\n"
        "- one\n- two bold\n\n"
        "  def f():\n      return 1\n\n  f()\n\n"
        "a b\n1 2\n\n"
        "tail <ok>"
    )


def test_script_and_style_never_leak() -> None:
    text = html_to_text(PAGE)
    assert "not text" not in text and "color" not in text
    assert "enable js" not in text and "icon" not in text


def test_malformed_html_does_not_raise() -> None:
    assert html_to_text("<p>unclosed <b>bold <script>x") == "unclosed bold"
    assert html_to_text("</div></p>text</script>") == "text"
    assert html_to_text("") == ""


def test_headings_levels_and_nul_bytes() -> None:
    assert html_to_text("<h3>Deep</h3>x\x00y") == "### Deep\n\nx\ufffdy"
