"""The manifest shown before an upload: what will leave the machine, and roughly what it costs.

It counts the items about to be sent (files, and other kinds apart), their size in bytes as
sent (UTF-8), their estimated tokens (the server's own estimate, ``plancast.shared``), and the
estimated input cost of sending them once to the plan's model. The cost is "unknown" for a
model without a listed price: never a guess. Context is sent with every request of a plan, so
the manifest says "per request".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from plancast.shared import (
    ErrorCode,
    PlancastError,
    estimate_input_cost,
    estimate_tokens,
    format_usd,
)

__all__ = [
    "CONFIRM_TOKENS_ENV",
    "DEFAULT_CONFIRM_TOKENS",
    "Manifest",
    "confirm_threshold",
]

#: Above this many estimated tokens, ``load`` and ``update`` ask before uploading.
DEFAULT_CONFIRM_TOKENS = 100_000
CONFIRM_TOKENS_ENV = "PLANCAST_CONFIRM_TOKENS"


def confirm_threshold(environ: Mapping[str, str] | None = None) -> int:
    """The token count above which an upload needs confirmation (``PLANCAST_CONFIRM_TOKENS``).

    Raises:
        PlancastError: the variable is set but is not a whole number >= 0.
    """
    env = os.environ if environ is None else environ
    raw = env.get(CONFIRM_TOKENS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_CONFIRM_TOKENS
    if not raw.isdigit():
        raise PlancastError(
            f"{CONFIRM_TOKENS_ENV} must be a whole number of tokens (default "
            f"{DEFAULT_CONFIRM_TOKENS}), not {env[CONFIRM_TOKENS_ENV]!r}",
            code=ErrorCode.INVALID_REQUEST,
        )
    return int(raw)


@dataclass(frozen=True, slots=True)
class Manifest:
    """Totals of one upload.

    Attributes:
        files: File items.
        others: Items of other kinds (notes, stdin, trees, URLs).
        bytes: UTF-8 size of every item's content.
        tokens: Estimated tokens, summed per item as the server estimates them.
        model: The plan's model (``provider/model``), or ``None`` when none is known.
        cost_usd: Estimated input cost of sending the items once, or ``None`` when unknown.
    """

    files: int
    others: int
    bytes: int
    tokens: int
    model: str | None
    cost_usd: float | None

    @classmethod
    def build(cls, items: Iterable[Mapping[str, str]], model: str | None) -> Manifest:
        """Totals for ``items`` (``{"kind", "name", "content"}``, as uploaded)."""
        files = others = size = tokens = 0
        for item in items:
            if item["kind"] == "file":
                files += 1
            else:
                others += 1
            size += len(item["content"].encode("utf-8", "surrogatepass"))
            tokens += estimate_tokens(item["content"])
        cost = estimate_input_cost(tokens, model) if model else None
        return cls(files, others, size, tokens, model, cost)

    def summary(self) -> str:
        """One line, e.g. ``to send: 3 files · 12 KiB · ~3,100 tokens · ~$0.0062 per request …``."""
        from plancast.client.context.scan import format_size

        what = [f"{self.files} file{'s' if self.files != 1 else ''}"]
        if self.others:
            what.append(f"{self.others} other item{'s' if self.others != 1 else ''}")
        parts = [", ".join(what), format_size(self.bytes), f"~{self.tokens:,} tokens"]
        if self.model is None:
            parts.append("cost unknown (no model chosen)")
        elif self.cost_usd is None:
            parts.append(f"cost unknown for {self.model}")
        else:
            cost = format_usd(self.cost_usd)
            cost = cost if cost.startswith("under") or cost == "$0" else "~" + cost
            parts.append(f"{cost} per request to {self.model}")
        return "to send: " + " · ".join(parts)
