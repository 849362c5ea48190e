"""The incremental reply parser: events, recovery, limits, and chunk-split invariance."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plancast.shared import (
    DEFAULT_MAX_BLOCK_CHARS,
    BlockOpened,
    DeleteFile,
    EditFile,
    MoveFile,
    OpParsed,
    ParseProblem,
    ReplyEvent,
    ReplyParser,
    UnsafePathError,
    WriteFile,
)
from plancast.shared._reply import MAX_TAG_LINE_CHARS


def parse_chunks(chunks: Iterable[str], **kwargs: int) -> list[ReplyEvent]:
    parser = ReplyParser(**kwargs)
    events: list[ReplyEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    return events


def parse(text: str, **kwargs: int) -> list[ReplyEvent]:
    return parse_chunks([text], **kwargs)


def split_at(text: str, points: Iterable[int]) -> list[str]:
    cuts = [0, *sorted(points), len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def tr(text: str, expected: list[ReplyEvent] | None = None, **kwargs: int) -> list[ReplyEvent]:
    """Like h11's ``tr()``: whole, one character at a time, and cut at every index."""
    whole = parse(text, **kwargs)
    if expected is not None:
        assert whole == expected
    assert parse_chunks(text, **kwargs) == whole
    for i in range(len(text) + 1):
        assert parse_chunks([text[:i], text[i:]], **kwargs) == whole, f"split at {i}"
    return whole


def ops(events: list[ReplyEvent]) -> list[object]:
    return [e.op for e in events if isinstance(e, OpParsed)]


def problems(events: list[ReplyEvent]) -> list[ParseProblem]:
    return [e for e in events if isinstance(e, ParseProblem)]


# -- a corpus of realistic replies ------------------------------------------------------------

TWO_FILES = """\
I'll add a small Flask app and its test.

<pc:file path="src/app.py">
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "hello"
</pc:file>

And the test:

<pc:file path="tests/test_app.py">
from src.app import app


def test_index():
    assert app.test_client().get("/").text == "hello"
</pc:file>

Run `pytest` to check.
"""

MULTI_EDIT = """\
Two changes to the handler, then one to the config.

<pc:edit path="src/app.py">
<pc:find>
@app.get("/")
def index():
    return "hello"
</pc:find>
<pc:replace>
@app.get("/")
def index():
    return render_template("index.html")
</pc:replace>

This second pair fixes the import:

<pc:find>
from flask import Flask
</pc:find>
<pc:replace>
from flask import Flask, render_template
</pc:replace>
</pc:edit>
<pc:edit path="./config/settings.toml">
<pc:find>
debug = true
</pc:find>
<pc:replace>
debug = false
</pc:replace>
</pc:edit>
Done."""  # no final newline: finish() completes the last line

FENCED = """\
Here is the file, in a fence as usual:

<pc:file path="README.md">
```markdown
# Demo

    indented code
```
</pc:file>
<pc:edit path="src/util.py">
<pc:find>
```python
def f():
    pass
```
</pc:find>
<pc:replace>
```
def f():
    return 1
```
</pc:replace>
</pc:edit>
"""

PROSE_WITH_CODE = """\
The format looks like this: `<pc:file path="x.py">` on its own line, then content.
Here is some code that is not a change:

```python
def greet():
    print("hi")  # <pc:find>
```

<pc:file path="docs/format.md">
A reply holds blocks such as
<pc:edit path="example.py">
<pc:find>
old
</pc:find>
</pc:edit>
and a file block ends with </pc:file> written alone on its line.
</pc:file>
"""

WHITESPACE_TAGS = """\
   <pc:edit   path = "lib/x.py" >\t
  <pc:find>
x = 1
  </pc:find>   
\t<pc:replace>
x = 2
</pc:replace>
 </pc:edit>
<pc:file path="empty.txt">
</pc:file>
"""

UNTERMINATED = """\
Starting the rewrite.

<pc:file path="src/big.py">
def a():
    return 1
"""

UNSAFE_PATHS = """\
<pc:file path="../outside.py">
stolen = True
</pc:file>
<pc:file path="/etc/passwd">
root::0:0
</pc:file>
<pc:edit path=".git/config">
<pc:find>
[core]
</pc:find>
<pc:replace>
[core]
hooksPath = /tmp/evil
</pc:replace>
</pc:edit>
<pc:file path="ok.py">
ok = True
</pc:file>
"""

STRAY_TAGS = """\
Some prose.
</pc:file>
<pc:replace>
</pc:edit>
<pc:edit path="a.py">
</pc:replace>
</pc:file>
<pc:find>
a
</pc:find>
</pc:find>
<pc:replace>
b
</pc:replace>
</pc:edit>
"""

EMPTY_FIND = """\
<pc:edit path="a.py">
<pc:find>
</pc:find>
<pc:replace>
x
</pc:replace>
<pc:find>
   

</pc:find>
<pc:replace>
y
</pc:replace>
<pc:find>
keep
</pc:find>
<pc:replace>
kept
</pc:replace>
</pc:edit>
"""

NESTED_OPEN = """\
<pc:edit path="a.py">
<pc:find>
one
</pc:find>
<pc:replace>
two
</pc:replace>
<pc:file path="b.py">
b = 1
</pc:file>
<pc:edit path="c.py">
<pc:find>
c
</pc:find>
<pc:edit path="d.py">
</pc:edit>
"""

MISSING_REPLACE = """\
<pc:edit path="a.py">
<pc:find>
one
</pc:find>
<pc:find>
two
</pc:find>
<pc:replace>
2
</pc:replace>
<pc:find>
three
</pc:find>
</pc:edit>
"""

MALFORMED_OPEN = """\
<pc:file path=src/app.py>
content = 1
</pc:file>
<pc:edit path='a.py'>
<pc:find>
x
</pc:find>
<pc:replace>
y
</pc:replace>
</pc:edit>
<pc:file>
<pc:edit path="ok.py">
</pc:file>
<pc:file path="after.py">
after = 1
</pc:file>
"""

MOVES = """\
The helpers move into their own package, and the old shim goes:

<pc:move path="src/helpers.py" to="src/util/helpers.py" />
   <pc:delete   path = "src/compat.py"/>  

```
<pc:delete path="docs/old.md" />
```
<pc:edit path="src/util/helpers.py">
<pc:find>
x = 1
</pc:find>
<pc:replace>
x = 2
</pc:replace>
<pc:move path="a.py" to="b.py" />
<pc:move path="b.py" to="../out.py" />
<pc:delete path="x.py">
</pc:move>
"""

CORPUS = {
    "two_files": TWO_FILES,
    "moves": MOVES,
    "multi_edit": MULTI_EDIT,
    "fenced": FENCED,
    "prose_with_code": PROSE_WITH_CODE,
    "whitespace_tags": WHITESPACE_TAGS,
    "unterminated": UNTERMINATED,
    "unsafe_paths": UNSAFE_PATHS,
    "stray_tags": STRAY_TAGS,
    "empty_find": EMPTY_FIND,
    "nested_open": NESTED_OPEN,
    "missing_replace": MISSING_REPLACE,
    "malformed_open": MALFORMED_OPEN,
}
CORPUS |= {f"{name}_crlf": text.replace("\n", "\r\n") for name, text in list(CORPUS.items())}


# -- split invariance -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_split_gives_the_same_events(name: str) -> None:
    events = tr(CORPUS[name])
    assert events  # every corpus reply produces something


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_split_gives_the_same_events_under_a_small_limit(name: str) -> None:
    tr(CORPUS[name], max_block_chars=20)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CORPUS)), data=st.data())
def test_random_splits_give_the_same_events(name: str, data: st.DataObject) -> None:
    text = CORPUS[name]
    points = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    assert parse_chunks(split_at(text, points)) == parse(text)


@pytest.mark.parametrize("name", sorted(n for n in CORPUS if not n.endswith("_crlf")))
def test_crlf_line_ends_read_like_lf(name: str) -> None:
    assert parse(CORPUS[name].replace("\n", "\r\n")) == parse(CORPUS[name])


_TAG_LINES = [
    '<pc:file path="a.py">',
    '<pc:file path="pkg/b.py">',
    '<pc:edit path="a.py">',
    '  <pc:edit path="c.txt">  ',
    '<pc:file path="../x">',
    '<pc:move path="a.py" to="c.txt" />',
    '<pc:move path="a.py" to="a.py" />',
    '<pc:move path="a.py" />',
    '<pc:delete path="pkg/b.py" />',
    '<pc:delete path="/x" />',
    "</pc:delete>",
    "<pc:file path=x>",
    "<pc:edit>",
    "</pc:file>",
    "</pc:edit>",
    "<pc:find>",
    "</pc:find>",
    "<pc:replace>",
    "</pc:replace>",
    " <pc:find> ",
    "```",
    "```python",
    "",
    "   ",
    "x = 1",
    "    return x",
]
_LINE = st.one_of(
    st.sampled_from(_TAG_LINES),
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=12),
)
_REPLY = st.builds(
    lambda lines, last: "".join(line + end for line, end in lines) + last,
    st.lists(st.tuples(_LINE, st.sampled_from(["\n", "\r\n"])), max_size=40),
    _LINE,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=_REPLY, limit=st.sampled_from([1, 8, 40, DEFAULT_MAX_BLOCK_CHARS]), data=st.data())
def test_any_reply_parses_without_raising_and_split_invariant(
    text: str, limit: int, data: st.DataObject
) -> None:
    events = parse(text, max_block_chars=limit)
    points = data.draw(st.lists(st.integers(0, len(text)), max_size=20))
    assert parse_chunks(split_at(text, points), max_block_chars=limit) == events
    line_count = text.count("\n") + 1
    for event in events:
        assert 1 <= event.line <= line_count
    for event in events:
        if isinstance(event, OpParsed):
            assert isinstance(event.op, (WriteFile, EditFile, MoveFile, DeleteFile))
            assert set(event.op.paths) <= {"a.py", "pkg/b.py", "c.txt"}


# -- what the events say ----------------------------------------------------------------------


def test_two_files() -> None:
    events = tr(TWO_FILES)
    assert events[0] == BlockOpened("file", "src/app.py", 3)
    assert events[1] == OpParsed(
        WriteFile(
            "src/app.py",
            'from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.get("/")\n'
            'def index():\n    return "hello"\n',
        ),
        3,
    )
    assert events[2] == BlockOpened("file", "tests/test_app.py", 16)
    assert isinstance(events[3], OpParsed)
    assert events[3].line == 16
    assert events[3].op.content.startswith("from src.app import app\n\n\ndef test_index")
    assert len(events) == 4


def test_multi_pair_edit_gives_one_op_per_pair() -> None:
    events = tr(MULTI_EDIT)
    assert events == [
        BlockOpened("edit", "src/app.py", 3),
        OpParsed(
            EditFile(
                "src/app.py",
                '@app.get("/")\ndef index():\n    return "hello"\n',
                '@app.get("/")\ndef index():\n    return render_template("index.html")\n',
            ),
            4,
        ),
        OpParsed(
            EditFile(
                "src/app.py",
                "from flask import Flask\n",
                "from flask import Flask, render_template\n",
            ),
            17,
        ),
        BlockOpened("edit", "config/settings.toml", 24),
        OpParsed(EditFile("config/settings.toml", "debug = true\n", "debug = false\n"), 25),
    ]


def test_a_fence_around_content_is_stripped() -> None:
    assert ops(tr(FENCED)) == [
        WriteFile("README.md", "# Demo\n\n    indented code\n"),
        EditFile("src/util.py", "def f():\n    pass\n", "def f():\n    return 1\n"),
    ]


@pytest.mark.parametrize(
    ("body", "content"),
    [
        ("```\n", "```\n"),  # one line is not a wrapping fence
        ("```\n```\n", ""),
        ("```py\nx\n", "```py\nx\n"),  # no closing fence
        ("x\n```\n", "x\n```\n"),  # no opening fence
        ("```py\nx\n```  \n", "x\n"),
        ("```py\nx\n````\n", "```py\nx\n````\n"),
        ("\n", "\n"),
        ("", ""),
        ("a\rb\n", "a\rb\n"),  # a lone CR is content
    ],
)
def test_content_text(body: str, content: str) -> None:
    assert ops(tr(f'<pc:file path="f">\n{body}</pc:file>\n')) == [WriteFile("f", content)]


def test_tags_in_prose_and_inside_a_file_block_are_not_tags() -> None:
    events = tr(PROSE_WITH_CODE)
    assert events == [
        BlockOpened("file", "docs/format.md", 9),
        OpParsed(
            WriteFile(
                "docs/format.md",
                'A reply holds blocks such as\n<pc:edit path="example.py">\n<pc:find>\nold\n'
                "</pc:find>\n</pc:edit>\n"
                "and a file block ends with </pc:file> written alone on its line.\n",
            ),
            9,
        ),
    ]


def test_tags_inside_find_and_replace_bodies_are_content() -> None:
    reply = (
        '<pc:edit path="p.md">\n<pc:find>\n</pc:edit>\n<pc:replace>\n</pc:find>\n'
        '<pc:replace>\n<pc:file path="q">\n</pc:edit>\n</pc:replace>\n</pc:edit>\n'
    )
    assert ops(tr(reply)) == [
        EditFile("p.md", "</pc:edit>\n<pc:replace>\n", '<pc:file path="q">\n</pc:edit>\n')
    ]


def test_tag_lines_may_carry_whitespace() -> None:
    events = tr(WHITESPACE_TAGS)
    assert ops(events) == [EditFile("lib/x.py", "x = 1\n", "x = 2\n"), WriteFile("empty.txt", "")]
    assert not problems(events)


def test_tags_in_fenced_prose_are_still_tags() -> None:
    reply = '```\n<pc:file path="a.py">\na = 1\n</pc:file>\n```\n'
    assert ops(tr(reply)) == [WriteFile("a.py", "a = 1\n")]


def test_only_complete_lines_are_acted_on() -> None:
    parser = ReplyParser()
    assert parser.feed('<pc:file path="a.py"') == []
    assert parser.feed(">") == []
    assert parser.current_path is None
    assert parser.feed("\r") == []
    assert parser.feed("\nx = 1\n</pc:file>") == [BlockOpened("file", "a.py", 1)]
    assert parser.current_path == "a.py"
    assert parser.finish() == [OpParsed(WriteFile("a.py", "x = 1\n"), 1)]
    assert parser.current_path is None


def test_current_block_follows_the_reply() -> None:
    parser = ReplyParser()
    seen = []
    for line in MULTI_EDIT.splitlines(keepends=True):
        parser.feed(line)
        seen.append(parser.current_path)
    assert seen[0] is None
    assert seen[2] == "src/app.py"
    assert seen[23] == "config/settings.toml"
    assert seen[-1] is None
    parser = ReplyParser()
    parser.feed('<pc:edit path="b.py">\n')
    assert parser.current_block == BlockOpened("edit", "b.py", 1)
    parser.feed('</pc:edit>\n<pc:file path="../x">\n')
    assert parser.current_block is None  # a refused block has no path to show


def test_finish_is_final() -> None:
    parser = ReplyParser()
    parser.feed("prose")
    assert parser.finish() == []
    assert parser.finish() == []
    with pytest.raises(RuntimeError, match="after finish"):
        parser.feed("more")


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_block_chars"):
        ReplyParser(max_block_chars=0)
    assert ReplyParser().max_block_chars == DEFAULT_MAX_BLOCK_CHARS == 4 * 1024 * 1024


# -- problems and recovery --------------------------------------------------------------------


def test_unterminated_file_block_is_dropped() -> None:
    events = tr(UNTERMINATED)
    assert events == [
        BlockOpened("file", "src/big.py", 3),
        ParseProblem(
            "line 3: the <pc:file> block for src/big.py opened at line 3 was not closed "
            "before the end of the reply; it is skipped",
            3,
            "src/big.py",
        ),
    ]


@pytest.mark.parametrize(
    ("tail", "fate"),
    [
        ("", ""),
        ("<pc:find>\nb\n", "; its last find/replace pair (line 8) is skipped"),
        ("<pc:find>\nb\n</pc:find>\n", "; its last find/replace pair (line 8) is skipped"),
        (
            "<pc:find>\nb\n</pc:find>\n<pc:replace>\nc",
            "; its last find/replace pair (line 8) is skipped",
        ),
    ],
)
def test_unterminated_edit_keeps_its_complete_pairs(tail: str, fate: str) -> None:
    reply = '<pc:edit path="e.py">\n<pc:find>\na\n</pc:find>\n<pc:replace>\n</pc:replace>\n'
    reply = reply.replace("</pc:replace>\n", "A\n</pc:replace>\n") + tail
    events = tr(reply)
    assert ops(events) == [EditFile("e.py", "a\n", "A\n")]
    assert problems(events) == [
        ParseProblem(
            "line 1: the <pc:edit> block for e.py opened at line 1 was not closed before "
            f"the end of the reply{fate}",
            1,
            "e.py",
        )
    ]


def test_unsafe_paths_drop_their_block_and_nothing_else() -> None:
    events = tr(UNSAFE_PATHS)
    assert ops(events) == [WriteFile("ok.py", "ok = True\n")]
    found = problems(events)
    assert [(p.line, p.path) for p in found] == [(1, None), (4, None), (7, None)]
    assert "line 1: <pc:file> block refused: path '../outside.py' climbs out" in found[0].message
    assert "absolute" in found[1].message
    assert found[2].message.startswith("line 7: <pc:edit> block refused: path '.git/config'")
    assert all(m.message.endswith("the block is skipped") for m in found)
    assert [e for e in events if isinstance(e, BlockOpened)] == [BlockOpened("file", "ok.py", 16)]


def test_stray_tags_are_reported_and_ignored() -> None:
    events = tr(STRAY_TAGS)
    assert ops(events) == [EditFile("a.py", "a\n", "b\n")]
    assert [(p.line, p.path, p.message) for p in problems(events)] == [
        (2, None, "line 2: </pc:file> outside any block"),
        (3, None, "line 3: <pc:replace> outside any block"),
        (4, None, "line 4: </pc:edit> outside any block"),
        (
            6,
            "a.py",
            "line 6: </pc:replace> does not belong inside the <pc:edit> block for a.py "
            "opened at line 5",
        ),
        (
            7,
            "a.py",
            "line 7: </pc:file> does not belong inside the <pc:edit> block for a.py "
            "opened at line 5",
        ),
        (
            11,
            "a.py",
            "line 11: </pc:find> does not belong inside the <pc:edit> block for a.py "
            "opened at line 5",
        ),
    ]


def test_empty_and_blank_finds_drop_their_pair() -> None:
    events = tr(EMPTY_FIND)
    assert ops(events) == [EditFile("a.py", "keep\n", "kept\n")]
    assert [(p.line, p.message) for p in problems(events)] == [
        (
            2,
            "line 2: empty <pc:find> in the <pc:edit> block for a.py opened at line 1; "
            "that pair is skipped",
        ),
        (
            7,
            "line 7: empty <pc:find> in the <pc:edit> block for a.py opened at line 1; "
            "that pair is skipped",
        ),
    ]


def test_an_opening_tag_inside_an_edit_closes_it() -> None:
    events = tr(NESTED_OPEN)
    assert ops(events) == [EditFile("a.py", "one\n", "two\n"), WriteFile("b.py", "b = 1\n")]
    assert [e for e in events if isinstance(e, BlockOpened)] == [
        BlockOpened("edit", "a.py", 1),
        BlockOpened("file", "b.py", 8),
        BlockOpened("edit", "c.py", 11),
        BlockOpened("edit", "d.py", 15),
    ]
    assert [(p.line, p.path, p.message) for p in problems(events)] == [
        (
            8,
            "a.py",
            "line 8: <pc:file> inside the <pc:edit> block for a.py opened at line 1, "
            "which ends there (its </pc:edit> is missing)",
        ),
        (
            12,
            "c.py",
            "line 12: <pc:find> in the <pc:edit> block for c.py opened at line 11 has no "
            "<pc:replace> before line 15; that pair is skipped",
        ),
        (
            15,
            "c.py",
            "line 15: <pc:edit> inside the <pc:edit> block for c.py opened at line 11, "
            "which ends there (its </pc:edit> is missing)",
        ),
        (
            15,
            "d.py",
            "line 15: the <pc:edit> block for d.py opened at line 15 has no "
            "<pc:find>/<pc:replace> pair",
        ),
    ]


def test_a_find_without_replace_drops_only_its_pair() -> None:
    events = tr(MISSING_REPLACE)
    assert ops(events) == [EditFile("a.py", "two\n", "2\n")]
    assert [(p.line, p.message) for p in problems(events)] == [
        (
            2,
            "line 2: <pc:find> in the <pc:edit> block for a.py opened at line 1 has no "
            "<pc:replace> before line 5; that pair is skipped",
        ),
        (
            11,
            "line 11: <pc:find> in the <pc:edit> block for a.py opened at line 1 has no "
            "<pc:replace> before line 14; that pair is skipped",
        ),
    ]


def test_stray_tag_while_a_replace_is_expected() -> None:
    reply = '<pc:edit path="a">\n<pc:find>\nx\n</pc:find>\n</pc:replace>\n<pc:replace>\ny\n'
    events = tr(reply + "</pc:replace>\n</pc:edit>\n")
    assert ops(events) == [EditFile("a", "x\n", "y\n")]
    assert [p.line for p in problems(events)] == [5]
    assert "</pc:replace> does not belong inside" in problems(events)[0].message


def test_malformed_opening_tags_drop_their_block() -> None:
    events = tr(MALFORMED_OPEN)
    assert ops(events) == [WriteFile("after.py", "after = 1\n")]
    expected = 'malformed <pc:{0}> tag, expected <pc:{0} path="relative/path">'
    assert [(p.line, p.path, p.message) for p in problems(events)] == [
        (1, None, f"line 1: {expected.format('file')}; the block is skipped"),
        (4, None, f"line 4: {expected.format('edit')}; the block is skipped"),
        (12, None, f"line 12: {expected.format('file')}; the block is skipped"),
    ]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("<pc:file path='a.py'>", "file"),
        ('<pc:file path="a.py"/>', "file"),
        ('<pc:file path="a.py" mode="x">', "file"),
        ('<pc:edit path="a.py"', "edit"),
        ("<pc:edit", "edit"),
        ("<pc:file>", "file"),
        ("<pc:edit >", "edit"),
    ],
)
def test_malformed_opening_tag(line: str, kind: str) -> None:
    # The dropped block is read to its closing tag: its content is not prose.
    body = '<pc:file path="x">\n</pc:edit>\n'
    if kind == "edit":
        body = f"<pc:find>\n{body}</pc:find>\n<pc:replace>\n{body}</pc:replace>\n"
    reply = f"{line}\n{body}</pc:{kind}>\nafter\n"
    assert parse(reply) == [
        ParseProblem(
            f'line 1: malformed <pc:{kind}> tag, expected <pc:{kind} path="relative/path">; '
            "the block is skipped",
            1,
        )
    ]


@pytest.mark.parametrize(
    "line",
    ["<pc:files>", "<pc:filepath>", "<pc:other>", "<pc:find x>", "< pc:file>", "<PC:FILE>"],
)
def test_lines_that_are_not_tags_are_prose(line: str) -> None:
    assert parse(f"{line}\n") == []


def test_problems_never_quote_content() -> None:
    marker = "SECRET_CONTENT_MARKER"
    reply = (
        f'<pc:edit path="a.py">\n<pc:find>\n{marker}\n</pc:find>\n'
        f'<pc:file path="b.py">\n{marker}\n</pc:file>\n'
        f"</pc:find>\n{marker}\n"
        f'<pc:edit path="c.py">\n<pc:find>\n{marker}\n</pc:find>\n<pc:replace>\n{marker}\n'
        f"{marker * 10}\n</pc:replace>\n</pc:edit>\n"
        f'<pc:file path="d.py">\n{marker}\n'
    )
    found = problems(parse(reply, max_block_chars=60))
    assert len(found) == 5
    assert all(marker not in p.message for p in found)


# -- limits -----------------------------------------------------------------------------------


def test_an_oversize_file_block_is_dropped_and_parsing_goes_on() -> None:
    reply = '<pc:file path="big.py">\n' + "x" * 9 + "\n" * 2 + "</pc:file>\n"
    reply += '<pc:file path="small.py">\nok\n</pc:file>\n'
    # "xxxxxxxxx\n" + "\n" is 11 characters
    assert ops(tr(reply, max_block_chars=11))[0] == WriteFile("big.py", "x" * 9 + "\n\n")
    events = tr(reply, max_block_chars=10)
    assert ops(events) == [WriteFile("small.py", "ok\n")]
    assert problems(events) == [
        ParseProblem(
            "line 1: the <pc:file> block for big.py opened at line 1 is larger than the limit "
            "of 10 characters; it is skipped",
            1,
            "big.py",
        )
    ]


def test_crlf_counts_toward_the_limit_as_received() -> None:
    reply = '<pc:file path="f">\r\nabc\r\n</pc:file>\r\n'
    assert ops(parse(reply, max_block_chars=5)) == [WriteFile("f", "abc\n")]
    assert ops(parse(reply, max_block_chars=4)) == []


def test_an_oversize_pair_drops_only_that_pair() -> None:
    reply = (
        '<pc:edit path="e.py">\n'
        "<pc:find>\nsmall\n</pc:find>\n<pc:replace>\nSMALL\n</pc:replace>\n"
        "<pc:find>\nbig\n</pc:find>\n<pc:replace>\n" + "B" * 30 + "\n</pc:replace>\n"
        "<pc:find>\nlast\n</pc:find>\n<pc:replace>\nLAST\n</pc:replace>\n"
        "</pc:edit>\n"
    )
    events = tr(reply, max_block_chars=20)
    assert ops(events) == [
        EditFile("e.py", "small\n", "SMALL\n"),
        EditFile("e.py", "last\n", "LAST\n"),
    ]
    assert problems(events) == [
        ParseProblem(
            "line 8: the find/replace pair in the <pc:edit> block for e.py opened at line 1 "
            "is larger than the limit of 20 characters; that pair is skipped",
            8,
            "e.py",
        )
    ]


def test_an_oversize_find_drops_its_pair() -> None:
    reply = '<pc:edit path="e">\n<pc:find>\n' + "F" * 30 + "\n</pc:find>\n<pc:replace>\nr\n"
    events = tr(reply + "</pc:replace>\n</pc:edit>\n", max_block_chars=20)
    assert ops(events) == []
    assert [p.line for p in problems(events)] == [2]


_LONG = MAX_TAG_LINE_CHARS + 1


def _long_line_splits(text: str) -> Iterable[list[str]]:
    """Cuts near every line end, and random-ish cuts through the long lines."""
    ends = [i for i, c in enumerate(text) if c == "\n"]
    for end in ends:
        for i in range(max(0, end - 3), min(len(text), end + 3) + 1):
            yield [text[:i], text[i:]]
    yield list(text)
    yield [text[i : i + 1000] for i in range(0, len(text), 1000)]
    yield [text[i : i + 4097] for i in range(0, len(text), 4097)]


def test_a_long_line_is_never_a_tag() -> None:
    padded_close = " " * _LONG + "</pc:file>"
    reply = f'<pc:file path="f">\n{padded_close}\n</pc:file>\n{padded_close}\n'
    expected = [BlockOpened("file", "f", 1), OpParsed(WriteFile("f", padded_close + "\n"), 1)]
    assert parse(reply) == expected
    for chunks in _long_line_splits(reply):
        assert parse_chunks(chunks) == expected
    # The longest line that can still be a tag.
    padded = " " * (MAX_TAG_LINE_CHARS - len('<pc:file path="f">')) + '<pc:file path="f">'
    assert parse(padded + "\n</pc:file>\n") == [
        BlockOpened("file", "f", 1),
        OpParsed(WriteFile("f", ""), 1),
    ]


@pytest.mark.parametrize("limit", [1, 100, _LONG, _LONG + 1, _LONG + 2, 3 * _LONG])
def test_a_long_content_line_overflows_the_same_way_however_it_arrives(limit: int) -> None:
    reply = (
        '<pc:file path="f">\nx\n'
        + "y" * _LONG
        + "\n</pc:file>\n"
        + '<pc:edit path="g">\n<pc:find>\n'
        + "z" * _LONG
        + "\r\n</pc:find>\n<pc:replace>\n"
        + "w" * (2 * _LONG)
        + "\n</pc:replace>\n</pc:edit>\n"
        + '<pc:file path="h">\n'
        + "v" * _LONG
    )
    expected = parse(reply, max_block_chars=limit)
    for chunks in _long_line_splits(reply):
        assert parse_chunks(chunks, max_block_chars=limit) == expected


def test_an_overflowing_partial_line_is_reported_before_it_ends() -> None:
    parser = ReplyParser(max_block_chars=100)
    assert parser.feed('<pc:file path="f">\n') == [BlockOpened("file", "f", 1)]
    (problem,) = parser.feed("x" * _LONG)
    assert isinstance(problem, ParseProblem)
    assert "larger than the limit of 100 characters" in problem.message
    assert parser.feed("x" * 10 + "\n</pc:file>\n") == []
    assert parser.current_path is None
    assert parser.finish() == []


@pytest.mark.parametrize(
    "prefix",
    [
        "",  # prose
        '<pc:file path="f">\n',  # an oversize file block
        '<pc:file path="../f">\n',  # a refused block
        '<pc:edit path="f">\n',  # between pairs
        '<pc:edit path="f">\n<pc:find>\n',  # an oversize find
    ],
)
def test_memory_stays_bounded(prefix: str) -> None:
    chunk = ("q" * 1023 + "\n") * 16 + "r" * 16384  # lines, then a long partial line
    parser = ReplyParser(max_block_chars=64 * 1024)
    parser.feed(prefix)
    tracemalloc.start()
    try:
        for _ in range(400):  # about 13 MB of reply
            parser.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    parser.finish()


# -- moves and deletes ------------------------------------------------------------------------


def test_moves_and_deletes_are_one_line_ops() -> None:
    events = tr(MOVES)
    assert events[:3] == [
        OpParsed(MoveFile("src/helpers.py", "src/util/helpers.py"), 3),
        OpParsed(DeleteFile("src/compat.py"), 4),
        OpParsed(DeleteFile("docs/old.md"), 7),  # in a fence of the prose, like other tags
    ]
    assert not any(isinstance(e, BlockOpened) and e.line in (3, 4, 7) for e in events)


def test_a_move_or_delete_ends_an_edit_whose_close_is_missing() -> None:
    events = tr(MOVES)
    assert events[3:] == [
        BlockOpened("edit", "src/util/helpers.py", 9),
        OpParsed(EditFile("src/util/helpers.py", "x = 1\n", "x = 2\n"), 10),
        ParseProblem(
            "line 16: <pc:move> inside the <pc:edit> block for src/util/helpers.py opened at "
            "line 9, which ends there (its </pc:edit> is missing)",
            16,
            "src/util/helpers.py",
        ),
        OpParsed(MoveFile("a.py", "b.py"), 16),
        ParseProblem(
            "line 17: <pc:move> refused: path '../out.py' climbs out of the project with '..'; "
            "it is skipped",
            17,
            "b.py",
        ),
        ParseProblem(
            'line 18: malformed <pc:delete> tag, expected <pc:delete path="relative/path" />; '
            "it is skipped",
            18,
        ),
        ParseProblem("line 19: </pc:move> outside any block", 19),
    ]


def test_a_move_where_a_replace_is_expected_drops_the_pair() -> None:
    reply = '<pc:edit path="a.py">\n<pc:find>\nx\n</pc:find>\n<pc:delete path="a.py" />\n'
    events = tr(reply)
    assert ops(events) == [DeleteFile("a.py")]
    assert [p.line for p in problems(events)] == [2, 5]
    assert "has no <pc:replace> before line 5" in problems(events)[0].message


def test_move_and_delete_tags_in_bodies_are_content() -> None:
    tag = '<pc:delete path="a.py" />\n<pc:move path="a.py" to="b.py" />\n'
    reply = f'<pc:file path="doc.md">\n{tag}</pc:file>\n'
    reply += f'<pc:edit path="doc.md">\n<pc:find>\n{tag}</pc:find>\n<pc:replace>\n</pc:replace>\n'
    reply += "</pc:edit>\n"
    assert ops(tr(reply)) == [WriteFile("doc.md", tag), EditFile("doc.md", tag, "")]


@pytest.mark.parametrize(
    ("line", "message", "path"),
    [
        ('<pc:move path="a.py" />', "malformed <pc:move> tag", None),
        ('<pc:move to="b.py" path="a.py" />', "malformed <pc:move> tag", None),
        ("<pc:move path='a.py' to='b.py' />", "malformed <pc:move> tag", None),
        ('<pc:move path="a.py" to="b.py">', "malformed <pc:move> tag", None),
        ("<pc:move>", "malformed <pc:move> tag", None),
        ('<pc:delete path="a.py"></pc:delete>', "malformed <pc:delete> tag", None),
        ("<pc:delete />", "malformed <pc:delete> tag", None),
        ('<pc:move path="a.py" to="./a.py" />', "refused: move of a.py names the same", "a.py"),
        ('<pc:move path="/a.py" to="b.py" />', "refused: path '/a.py' is absolute", None),
        ('<pc:move path="a.py" to=".git/x" />', "refused: path '.git/x' is inside .git/", "a.py"),
        ('<pc:delete path="" />', "<pc:delete> refused: path is empty", None),
        ("</pc:delete>", "</pc:delete> outside any block", None),
    ],
)
def test_bad_move_and_delete_tags_are_problems(line: str, message: str, path: str | None) -> None:
    (problem,) = tr(f"{line}\nafter\n")
    assert isinstance(problem, ParseProblem)
    assert (problem.line, problem.path) == (1, path)
    assert message in problem.message


def test_move_and_delete_tags_leave_no_block_open() -> None:
    parser = ReplyParser()
    parser.feed('<pc:move path="a" to="b" />\n<pc:delete path="c" />\n')
    assert parser.current_block is None
    assert parser.finish() == []


# -- events validate when built ---------------------------------------------------------------


def test_events_validate_when_built() -> None:
    with pytest.raises(ValueError, match="kind"):
        BlockOpened("dir", "a", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="line"):
        BlockOpened("file", "a", 0)
    with pytest.raises(UnsafePathError):
        BlockOpened("file", "../a", 1)
    assert BlockOpened("file", "./a//b", 1).path == "a/b"
    with pytest.raises(ValueError, match="line"):
        OpParsed(WriteFile("a", ""), 0)
    with pytest.raises(ValueError, match="message"):
        ParseProblem("", 1)
    with pytest.raises(ValueError, match="line"):
        ParseProblem("x", -1)
    event = ParseProblem("x", 2)
    assert event.path is None
    with pytest.raises(AttributeError):
        event.line = 3  # type: ignore[misc]
