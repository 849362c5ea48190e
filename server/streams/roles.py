"""The model calls a stream makes besides its planner's reply: summarize, name, build, commit.

Rules:

1. Every call goes through the stream's own worker (so through the one credentials holder the
   stream has, and nothing else), under the stream's time limits, and is recorded as usage
   metadata: role, model, tokens, timings. Never its text.
2. These calls serve the plan; none may sink it. A failed summary, name or commit message is
   reported as a ``Status`` and the stream goes on without it. (A failed rebuild makes that file's
   build fail with its reason; ``builds`` decides.)
3. What a role returns is cleaned before use: a name is a short slug, a commit message loses
   quotes and fences, a summary is stripped. An empty result counts as a failure.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta, Usage
from plancast.server.store.database import storable
from plancast.server.streams.deadlines import StreamLimits, within_limits
from plancast.server.workers.pool import Worker
from plancast.shared import PlanModels, RoleModel, estimate_tokens

MAX_NAME_CHARS = 48
ROLE_MAX_TOKENS = {"summarizer": 2048, "namer": 32, "committer": 512, "builder": 16384}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Usage metadata of one model call (Rule 1)."""

    role: str
    model: str
    input_tokens: int
    output_tokens: int
    first_token_ms: int | None
    duration_ms: int


class RoleCalls:
    """One stream's model calls, each recorded; the planner's streamed reply is recorded too."""

    def __init__(self, worker: Worker, models: PlanModels, limits: StreamLimits) -> None:
        self._worker = worker
        self.models = models
        self._limits = limits
        self.records: list[CallRecord] = []

    def pick(self, role: str, system: str, messages: Sequence[ChatMessage]) -> RoleModel:
        """The model this input goes to (the role's, or the large-context one): ``for_input``."""
        tokens = estimate_tokens(system) + sum(estimate_tokens(m.content) for m in messages)
        return self.models.for_input(role, tokens)

    def record(
        self,
        role: str,
        model: str,
        usage: Usage | None,
        started: float,
        first_token: float | None,
    ) -> None:
        self.records.append(
            CallRecord(
                role,
                model,
                usage.input_tokens if usage else 0,
                usage.output_tokens if usage else 0,
                _ms(first_token - started) if first_token is not None else None,
                _ms(time.monotonic() - started),
            )
        )

    async def text(self, role: str, system: str, messages: tuple[ChatMessage, ...]) -> str:
        """The whole reply of one call for ``role``.

        Raises:
            ProviderError: the call failed (after its retries).
            ContextTooLarge: no model of the plan takes this input.
        """
        chosen = self.pick(role, system, messages)
        request = ChatRequest(
            model=chosen.model,
            system=system,
            messages=messages,
            max_tokens=ROLE_MAX_TOKENS.get(role, 8192),
        )
        started, first, usage = time.monotonic(), None, None
        parts: list[str] = []
        try:
            async for output in within_limits(self._worker.stream_chat(request), self._limits):
                if isinstance(output, TextDelta):
                    first = first if first is not None else time.monotonic()
                    parts.append(storable(output.text))
                else:
                    usage = output
        finally:
            self.record(role, str(chosen.model), usage, started, first)
        return "".join(parts)


# -- cleaning what a role returns (Rule 3) ---------------------------------------------------

_FENCE = re.compile(r"^```[^\n]*\n(.*?)\n?```\s*$", re.DOTALL)


def clean_name(text: str) -> str | None:
    """A plan name from the namer's reply: lowercase words joined by hyphens, or None."""
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    # Accents folded (über → uber), so a letter outside ASCII does not split a word in two.
    folded = unicodedata.normalize("NFKD", first.lower().replace("ß", "ss"))
    words = re.findall(r"[a-z0-9]+", "".join(c for c in folded if not unicodedata.combining(c)))
    name = "-".join(words)
    while len(name) > MAX_NAME_CHARS and "-" in name:
        name = name.rsplit("-", 1)[0]
    return name[:MAX_NAME_CHARS] or None


def clean_commit_message(text: str) -> str | None:
    """The committer's message without fences or wrapping quotes; None when empty."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if not text:
        return None
    subject, _, body = text.partition("\n")
    subject = subject.strip()
    if len(subject) > 72:
        subject = subject[:71].rstrip() + "…"
    return subject + ("\n" + body.rstrip() if body.strip() else "")


def clean_summary(text: str) -> str | None:
    text = text.strip()
    return text or None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
