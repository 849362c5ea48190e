"""HTML reduced to readable text, for URL context items (stdlib ``html.parser`` only).

Rules:

Rule 1: ``script``, ``style``, ``noscript``, ``template``, ``svg``, ``iframe`` and ``head``
        (except its ``title``) are dropped with everything inside them.
Rule 2: Block elements (paragraphs, headings, lists, tables, ``div`` …) break the text;
        consecutive breaks collapse to one blank line between paragraphs. List items, table
        rows and ``br`` start a new line within their paragraph.
Rule 3: Inside a paragraph, runs of whitespace become one space, as a browser shows them;
        inside ``pre`` the text is kept as written.
Rule 4: Headings get a ``#`` prefix per level and list items a ``- `` prefix, so the structure
        survives; the page's ``title`` is the first line.
Rule 5: Entities are decoded (``&amp;`` → ``&``). Malformed HTML never raises: the parser is
        lenient and unclosed elements end with the document.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_DROP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "head"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "details", "div", "dl",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "html", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_LINE = frozenset({"li", "tr", "dt", "dd"})  # one line each, inside their list or table
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_SPACE = re.compile(r"[ \t\r\n\f]+")
_BREAK = "\x00"  # a paragraph break (NUL never survives in the text itself)
_PRE = "\x01"  # starts a block whose text is kept as written


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.drop_depth = 0  # > 0 while inside a dropped element
        self.pre_depth = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
            return
        if tag in _DROP:
            if tag not in _VOID:
                self.drop_depth += 1
            return
        if self.drop_depth:
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag in _LINE:
            self.parts.append("\n- " if tag == "li" else "\n")
        elif tag in _BLOCK:
            self.parts.append(_BREAK)
            if tag == "pre":
                self.pre_depth += 1
                self.parts.append(_PRE)
            elif len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
                self.parts.append("#" * int(tag[1]) + " ")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if tag in _DROP:
            if self.drop_depth:
                self.drop_depth -= 1
            return
        if self.drop_depth:
            return
        if tag in _LINE:
            self.parts.append("\n")
        elif tag in _BLOCK:
            if tag == "pre" and self.pre_depth:
                self.pre_depth -= 1
            self.parts.append(_BREAK)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.drop_depth:
            return
        data = data.replace(_BREAK, "\ufffd").replace(_PRE, "\ufffd")
        self.parts.append(data if self.pre_depth else _SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """The readable text of an HTML document (see the module's rules).

    Returns:
        Paragraphs separated by one blank line, without leading or trailing blank lines; the
        ``title`` first when there is one. An empty string when the page has no text.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    paragraphs: list[str] = []
    title = _SPACE.sub(" ", "".join(parser.title)).strip()
    if title:
        paragraphs.append(title)
    for block in "".join(parser.parts).split(_BREAK):
        if block.startswith(_PRE):
            text = block.replace(_PRE, "").strip("\n").rstrip()
        else:
            lines = (line.strip() for line in block.replace(_PRE, "").split("\n"))
            text = "\n".join(line for line in lines if line)
        if text.strip():
            paragraphs.append(text)
    return "\n\n".join(paragraphs)
