"""Stale context: the client's hash of a file matches the server's, redacted files included."""

from __future__ import annotations

import hashlib
from pathlib import Path

from plancast.client.context.freshness import (
    MAX_COMPARE_BYTES,
    content_sha256,
    file_text,
    find_stale,
)
from plancast.client.context.secrets import guard


def _item(name: str, content: str, kind: str = "file") -> dict[str, str]:
    return {"kind": kind, "name": name, "sha256": content_sha256(content)}


def test_content_sha256_is_the_server_s_hash() -> None:
    text = "héllo\r\nwörld \ufffd"
    expected = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    assert content_sha256(text) == expected


def test_file_text_decodes_as_load_sends_it(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\r\n")
    assert file_text(tmp_path / "latin.txt") == "caf\ufffd\r\n"
    assert file_text(tmp_path / "missing") is None


def test_changed_removed_and_fresh(tmp_path: Path) -> None:
    (tmp_path / "same.py").write_text("x = 1\n")
    (tmp_path / "edited.py").write_text("x = 2\n")
    (tmp_path / "now_a_dir").mkdir()
    (tmp_path / "bad.bin").write_bytes(b"\xff\xfe")
    items = [
        _item("same.py", "x = 1\n"),
        _item("edited.py", "x = 1\n"),
        _item("deleted.py", "gone\n"),
        _item("now_a_dir", "was a file\n"),
        _item("bad.bin", "\ufffd\ufffd"),
        _item("note 1", "a note", kind="note"),
        _item("tree:.", "a tree", kind="tree"),
    ]
    staleness = find_stale(tmp_path, items)
    assert staleness.stale
    assert staleness.changed == ["edited.py"]
    assert staleness.removed == ["deleted.py", "now_a_dir"]
    assert staleness.fresh == ["bad.bin", "same.py"]


def test_a_file_sent_redacted_is_fresh_while_unchanged(tmp_path: Path) -> None:
    key = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0" * 2
    text = f"TOKEN = '{key}'\n"
    (tmp_path / "conf.py").write_text(text)
    redacted = guard(text, "redact").text
    assert redacted is not None and key not in redacted
    assert find_stale(tmp_path, [_item("conf.py", redacted)]).fresh == ["conf.py"]
    (tmp_path / "conf.py").write_text(text + "MORE = 1\n")
    assert find_stale(tmp_path, [_item("conf.py", redacted)]).changed == ["conf.py"]


def test_a_file_that_grew_too_large_is_changed_without_being_read(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_bytes(b"a" * (MAX_COMPARE_BYTES + 1))
    staleness = find_stale(tmp_path, [_item("log.txt", "a" * (MAX_COMPARE_BYTES + 1))])
    assert staleness.changed == ["log.txt"]


def test_nothing_loaded_is_never_stale(tmp_path: Path) -> None:
    staleness = find_stale(tmp_path, [])
    assert not staleness.stale and staleness.fresh == []
