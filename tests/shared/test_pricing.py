"""Token estimates and the input price table (``plancast.shared._pricing``)."""

from __future__ import annotations

import math

import pytest

from plancast.shared import (
    CHARS_PER_TOKEN,
    INPUT_PRICES,
    PRICES_AS_OF,
    estimate_input_cost,
    estimate_tokens,
    format_usd,
    input_price,
)


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)]
)
def test_estimate_tokens_is_characters_over_four_rounded_up(text: str, tokens: int) -> None:
    assert CHARS_PER_TOKEN == 4
    assert estimate_tokens(text) == tokens


def test_the_estimate_matches_the_server_s() -> None:
    from plancast.server.domain.context import estimate_tokens as server_estimate

    for text in ("", "é", "hello world", "x" * 1001, "日本語のテキスト" * 7):
        assert estimate_tokens(text) == server_estimate(text)


def test_known_models_have_a_price() -> None:
    assert input_price("openai/gpt-4.1") == 2.00
    assert input_price("anthropic/claude-sonnet-4") == 3.00
    assert input_price("  OpenAI/GPT-4.1-mini ") == 0.40


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai/gpt-4.1-2025-04-14", "openai/gpt-4.1"),
        ("anthropic/claude-sonnet-4-20250514", "anthropic/claude-sonnet-4"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku"),
    ],
)
def test_snapshots_and_aliases_share_their_family_s_price(model: str, family: str) -> None:
    assert input_price(model) == INPUT_PRICES[family]


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-5.5",  # not in the table: unknown, never a neighbour's price
        "anthropic/claude-sonnet-5-5",
        "azure/gpt-4.1",  # deployments are named by the user
        "ollama/llama3.1",
        "openai/gpt-4.1-mini-2",  # not a snapshot suffix
        "gpt-4.1",  # no provider
    ],
)
def test_unknown_models_have_no_price(model: str) -> None:
    assert input_price(model) is None
    assert estimate_input_cost(1000, model) is None


def test_the_table_is_well_formed() -> None:
    assert len(PRICES_AS_OF) == 10 and PRICES_AS_OF[4] == "-"
    for model, price in INPUT_PRICES.items():
        provider, _, name = model.partition("/")
        assert provider in ("openai", "anthropic") and name, model
        assert 0 < price < 100 and math.isfinite(price), model
    with pytest.raises(TypeError):
        INPUT_PRICES["openai/free"] = 0.0  # type: ignore[index]


def test_estimate_input_cost() -> None:
    assert estimate_input_cost(1_000_000, "openai/gpt-4.1") == pytest.approx(2.0)
    assert estimate_input_cost(0, "openai/gpt-4.1") == 0
    assert estimate_input_cost(250_000, "anthropic/claude-opus-4") == pytest.approx(3.75)
    with pytest.raises(ValueError, match="tokens must be >= 0"):
        estimate_input_cost(-1, "openai/gpt-4.1")


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0, "$0"),
        (0.004, "under $0.01"),
        (0.0123, "$0.012"),
        (0.0999, "$0.10"),
        (0.2449, "$0.24"),
        (1.234, "$1.2"),
        (9.96, "$10"),
        (12.3, "$12"),
        (1234, "$1,200"),
    ],
)
def test_format_usd_shows_at_most_two_significant_digits(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown


@pytest.mark.parametrize("amount", [-0.01, math.inf, math.nan])
def test_format_usd_refuses_nonsense(amount: float) -> None:
    with pytest.raises(ValueError, match="finite, non-negative"):
        format_usd(amount)
