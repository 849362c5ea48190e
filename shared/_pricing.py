"""Token estimates and input prices, for the manifest that ``plancast load`` shows before upload.

Rule 1 (tokens): a token is estimated as about :data:`CHARS_PER_TOKEN` characters, rounded up.
        This is the server's estimate too (``server/domain/context.py``), so the manifest and
        ``plancast ls`` agree. It needs no tokenizer download (tiktoken fails offline) and is
        provider-neutral; real counts differ by tokenizer, often by 10-30 %.
Rule 2 (prices): :data:`INPUT_PRICES` holds list prices in USD per million *input* tokens, at
        the standard tier, for prompts under any long-context surcharge threshold, as published
        by OpenAI and Anthropic and checked on :data:`PRICES_AS_OF`. Batch, cached-input and
        regional prices are not modelled.
Rule 3 (no guessing): a model that is not in the table has no price. Callers show "unknown";
        nothing here interpolates from a similar name. Azure deployments and Ollama models are
        named by the user, so they are never in the table.
Rule 4 (precision): an estimate is shown with at most two significant digits
        (:func:`format_usd`), because the token count it multiplies is itself an estimate.

To update a price, edit the table and :data:`PRICES_AS_OF` together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType

#: Characters per token in the estimate (Rule 1).
CHARS_PER_TOKEN = 4

#: The day the prices below were last checked against the providers' price pages.
PRICES_AS_OF = "2025-10-01"

#: USD per 1M input tokens, keyed ``provider/model`` (Rule 2).
INPUT_PRICES: Mapping[str, float] = MappingProxyType(
    {
        "openai/gpt-4o": 2.50,
        "openai/gpt-4o-mini": 0.15,
        "openai/gpt-4.1": 2.00,
        "openai/gpt-4.1-mini": 0.40,
        "openai/gpt-4.1-nano": 0.10,
        "openai/o3": 2.00,
        "openai/o4-mini": 1.10,
        "openai/gpt-5": 1.25,
        "openai/gpt-5-mini": 0.25,
        "openai/gpt-5-nano": 0.05,
        "anthropic/claude-3-5-haiku": 0.80,
        "anthropic/claude-3-7-sonnet": 3.00,
        "anthropic/claude-sonnet-4": 3.00,
        "anthropic/claude-sonnet-4-5": 3.00,
        "anthropic/claude-haiku-4-5": 1.00,
        "anthropic/claude-opus-4": 15.00,
        "anthropic/claude-opus-4-1": 15.00,
    }
)

# Dated snapshots and aliases share their family's price: gpt-4.1-2025-04-14,
# claude-sonnet-4-20250514, claude-3-5-haiku-latest.
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def estimate_tokens(text: str) -> int:
    """Estimate the tokens in ``text`` (Rule 1): characters / 4, rounded up.

    Args:
        text: Any text.

    Returns:
        The estimate; 0 for an empty text.
    """
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def input_price(model: str) -> float | None:
    """The list price of ``model`` in USD per 1M input tokens, or ``None`` when unknown.

    Args:
        model: ``provider/model``, as in ``PLANCAST_MODEL``; a dated snapshot
            (``…-20250514``, ``…-2025-04-14``) or ``-latest`` alias counts as its family.

    Returns:
        The price, or ``None`` for any model not in :data:`INPUT_PRICES` (Rule 3).
    """
    key = model.strip().lower()
    price = INPUT_PRICES.get(key)
    if price is None:
        price = INPUT_PRICES.get(_SNAPSHOT_SUFFIX.sub("", key))
    return price


def estimate_input_cost(tokens: int, model: str) -> float | None:
    """What sending ``tokens`` input tokens to ``model`` once costs, in USD, or ``None``.

    Args:
        tokens: An input token count (an estimate, see :func:`estimate_tokens`).
        model: ``provider/model``.

    Returns:
        The cost, or ``None`` when the model's price is unknown.

    Raises:
        ValueError: ``tokens`` is negative.
    """
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, got {tokens}")
    price = input_price(model)
    if price is None:
        return None
    return tokens * price / 1_000_000


def format_usd(amount: float) -> str:
    """``$0.24``, ``$12``, ``$1,200``, ``under $0.01``: two significant digits at most (Rule 4).

    Args:
        amount: A non-negative amount in USD.

    Returns:
        The amount for people to read.

    Raises:
        ValueError: ``amount`` is negative or not finite.
    """
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"amount must be a finite, non-negative number, got {amount!r}")
    if amount == 0:
        return "$0"
    if amount < 0.01:
        return "under $0.01"
    rounded = float(f"{amount:.2g}")
    decimals = max(0, 1 - math.floor(math.log10(rounded)))
    return f"${rounded:,.{decimals}f}"
