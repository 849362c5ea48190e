"""The manifest before upload, and the confirmation threshold."""

from __future__ import annotations

import pytest

from plancast.client.context.manifest import (
    CONFIRM_TOKENS_ENV,
    DEFAULT_CONFIRM_TOKENS,
    Manifest,
    confirm_threshold,
)
from plancast.shared import PlancastError


def _items() -> list[dict[str, str]]:
    return [
        {"kind": "file", "name": "a.py", "content": "x" * 4000},
        {"kind": "file", "name": "b.py", "content": "é" * 10},  # 10 chars, 20 bytes
        {"kind": "note", "name": "note 1", "content": "hi"},
    ]


def test_totals_count_kinds_bytes_and_tokens_as_the_server_does() -> None:
    manifest = Manifest.build(_items(), "openai/gpt-4.1")
    assert (manifest.files, manifest.others) == (2, 1)
    assert manifest.bytes == 4000 + 20 + 2
    assert manifest.tokens == 1000 + 3 + 1  # rounded up per item, as the server stores them
    assert manifest.cost_usd == pytest.approx(1004 * 2.0 / 1_000_000)


def test_summary_with_a_known_price() -> None:
    summary = Manifest.build(_items(), "openai/gpt-4.1").summary()
    assert summary == (
        "to send: 2 files, 1 other item · 3.9 KiB · ~1,004 tokens · "
        "under $0.01 per request to openai/gpt-4.1"
    )
    big = [{"kind": "file", "name": "big.py", "content": "y" * 400_000}]
    assert Manifest.build(big, "anthropic/claude-sonnet-4").summary() == (
        "to send: 1 file · 390.6 KiB · ~100,000 tokens · ~$0.30 per request to "
        "anthropic/claude-sonnet-4"
    )


def test_summary_says_unknown_and_never_guesses() -> None:
    one = [{"kind": "file", "name": "a", "content": "abc"}]
    assert Manifest.build(one, "openai/gpt-5.5").summary() == (
        "to send: 1 file · 3 bytes · ~1 tokens · cost unknown for openai/gpt-5.5"
    )
    assert Manifest.build(one, None).summary().endswith("cost unknown (no model chosen)")
    assert Manifest.build(one, None).cost_usd is None


def test_confirm_threshold_from_the_environment() -> None:
    assert confirm_threshold({}) == DEFAULT_CONFIRM_TOKENS == 100_000
    assert confirm_threshold({CONFIRM_TOKENS_ENV: " 2500 "}) == 2500
    assert confirm_threshold({CONFIRM_TOKENS_ENV: "1_000_000"}) == 1_000_000
    assert confirm_threshold({CONFIRM_TOKENS_ENV: ""}) == DEFAULT_CONFIRM_TOKENS
    for bad in ("-5", "lots", "1e6"):
        with pytest.raises(PlancastError, match="PLANCAST_CONFIRM_TOKENS must be a whole"):
            confirm_threshold({CONFIRM_TOKENS_ENV: bad})
