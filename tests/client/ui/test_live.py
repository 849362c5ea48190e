"""The live region: drawn in place, erased exactly, hidden by others' writes, never wrapped."""

from __future__ import annotations

import io

from plancast.client.ui.live import LiveRegion, char_width, crop, strip_ansi

ERASE = "\x1b[J"


def region(cols: int = 20, rows: int = 5) -> tuple[LiveRegion, io.StringIO]:
    stream = io.StringIO()
    return LiveRegion(stream, size=lambda: (cols, rows)), stream


def test_crop_counts_cells_not_characters_and_keeps_escapes() -> None:
    assert crop("hello world", 5) == "hello"
    assert crop("\x1b[1mhello\x1b[0m world", 5) == "\x1b[1mhello\x1b[0m"
    assert crop("\x1b[1mhello world", 3) == "\x1b[1mhel\x1b[0m"  # a cut style is reset
    assert crop("日本語", 5) == "日本"  # wide characters take two cells
    assert crop("e\u0301e\u0301", 2) == "e\u0301e\u0301"  # combining marks take none
    assert char_width("a") == 1 and char_width("日") == 2


def test_lines_are_drawn_without_a_final_newline_and_erased_back_to_the_start() -> None:
    live, stream = region()
    live.show(["one", "two", "three"])
    drawn = stream.getvalue()
    assert strip_ansi(drawn) == "one\ntwo\nthree"
    live.show(["four"])
    assert stream.getvalue()[len(drawn) :].count("\x1b[2A") == 1  # up two lines from the third
    live.close()
    assert stream.getvalue().endswith("\r" + ERASE + "\x1b[?2026l") is False
    assert stream.getvalue().endswith("\r" + ERASE)  # a one-line region: no cursor up


def test_lines_are_cropped_below_the_width_and_only_the_last_rows_kept() -> None:
    live, stream = region(cols=30, rows=3)
    live.show(["a" * 50, "b", "c", "d"])
    assert strip_ansi(stream.getvalue()) == "c\nd"  # rows - 1 lines
    live.show(["x" * 50])
    assert "x" * 29 in stream.getvalue() and "x" * 30 not in stream.getvalue()


def test_a_write_by_someone_else_hides_the_region_until_the_next_show() -> None:
    live, stream = region()
    live.show(["status"])
    with live.paused():
        stream.write("a note\n")
    assert live.hidden
    mark = len(stream.getvalue())
    live.update(["status 2"])  # the clock's redraw: stays hidden
    assert stream.getvalue()[mark:] == ""
    live.show(["status 3"])  # the next event brings it back
    assert strip_ansi(stream.getvalue()[mark:]) == "status 3"


def test_suspended_draws_nothing_even_on_show() -> None:
    live, stream = region()
    live.show(["status"])
    with live.suspended():
        mark = len(stream.getvalue())
        live.show(["hidden"])
        assert stream.getvalue()[mark:] == ""
    live.show(["back"])
    assert strip_ansi(stream.getvalue()).endswith("back")


def test_nothing_is_drawn_after_close() -> None:
    live, stream = region()
    live.show(["a", "b"])
    live.close()
    mark = len(stream.getvalue())
    live.show(["late"])
    live.update(["later"])
    assert stream.getvalue()[mark:] == ""
    assert live.closed
