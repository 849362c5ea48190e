"""Sending context items: the secret guard, the manifest, the question, the upload.

Not a command group (no ``register``): ``load`` and ``update`` in ``context.py`` share it, so
that every upload passes through the same steps, in this order:

1. **Guard** each item's content for secrets (``context/secrets.py``). Findings go to stderr as
   ``path:line: rule`` with a masked value, never the value. By default the item is held back;
   ``--redact-secrets`` and ``--allow-secrets`` change that.
2. **Manifest**: files, bytes, estimated tokens and the estimated input cost for the plan's
   model, on stderr, so that stdout stays the command's result.
3. **Ask** when the estimate is above ``PLANCAST_CONFIRM_TOKENS`` (default 100,000), unless
   ``--yes``. With stdin not a terminal there is nobody to ask: refuse, and say how to go on.
4. **Upload** in batches under the server's request size limit, with a progress bar for a large
   upload on a terminal. Files, trees and URLs that are already in the context with the same
   content are not sent again (and not counted in the manifest); a tree or URL with new content
   replaces the old item (the server keeps one item per file path, but appends other kinds).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from plancast.client.context.freshness import content_sha256
from plancast.client.context.manifest import Manifest, confirm_threshold
from plancast.client.context.progress import Progress, is_large
from plancast.client.context.secrets import SecretPolicy, guard
from plancast.client.session import Session
from plancast.shared import ErrorCode, PlancastError

#: Items per request stay under this many bytes (the server's default limit is larger).
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: Kinds the server appends rather than replaces by name; the client replaces them itself.
#: Kinds that have one item per name, so that an unchanged one need not be sent again.
_KEYED_KINDS = frozenset({"file", "tree", "url"})  # replaced by name on the server

Item = dict[str, str]


@dataclass(slots=True)
class Guarded:
    """Items that may be sent, and the names held back by the secret guard."""

    items: list[Item] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    redacted: int = 0
    allowed: int = 0


def secret_policy(args: Any) -> SecretPolicy:
    """``block`` unless ``--redact-secrets`` or ``--allow-secrets`` was given."""
    if getattr(args, "allow_secrets", False):
        return "allow"
    if getattr(args, "redact_secrets", False):
        return "redact"
    return "block"


class SecretGuard:
    """Step 1: guards items one at a time (so that a progress loop can call it per file)."""

    def __init__(self, session: Session, policy: SecretPolicy) -> None:
        self.out = session.output
        self.policy = policy
        self.result = Guarded()

    def add(self, item: Item) -> None:
        """Guard one item and keep it when the policy lets it through."""
        guarded = guard(item["content"], self.policy)
        for finding in guarded.findings:
            self.out.note(
                f"secret: {item['name']}:{finding.line}: {finding.rule} {finding.masked}",
                "yellow" if self.policy != "block" else "red",
            )
        if guarded.text is None:
            self.result.blocked.append(item["name"])
            return
        if guarded.findings and self.policy == "redact":
            self.result.redacted += len(guarded.findings)
            item = {**item, "content": guarded.text}
        elif guarded.findings:
            self.result.allowed += len(guarded.findings)
        self.result.items.append(item)

    def keep(self, item: Item) -> None:
        """Keep an item that needs no guard (a tree holds names only)."""
        self.result.items.append(item)

    def finish(self) -> Guarded:
        """Report what the guard did, once, and return the items to send."""
        result = self.result
        if result.blocked:
            names = ", ".join(result.blocked)
            self.out.note(
                f"held back {len(result.blocked)} item(s) with secrets (not uploaded): {names}. "
                "--redact-secrets uploads them with each value replaced by [REDACTED:<rule>]; "
                "--allow-secrets uploads them as they are",
                "red",
            )
        if result.redacted:
            self.out.note(f"redacted {result.redacted} secret(s) before upload", "yellow")
        if result.allowed:
            self.out.note(
                f"uploading {result.allowed} secret(s) as they are (--allow-secrets)", "yellow"
            )
        return result


def plan_model(session: Session) -> str | None:
    """The model the plan's requests go to: the plan's own, else the one ``tell`` would choose."""
    from plancast.client.credentials import choose_model

    plan = session.api.get(f"/plans/{session.plan_id}")
    if plan.get("model"):
        return str(plan["model"])
    try:
        try:
            configured = session.settings["model"]  # PLANCAST_MODEL, else the config file
        except (AttributeError, KeyError):
            configured = None
        return str(choose_model(configured))
    except PlancastError:
        return None  # no provider configured: the cost is unknown


def confirm(session: Session, question: str, stdin: TextIO | None = None) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin (default: no).

    Raises:
        PlancastError: stdin is not a terminal, so nobody can answer.
    """
    stdin = stdin or sys.stdin
    if not isatty(stdin):
        raise PlancastError(
            f"{question} — stdin is not a terminal, so nothing was sent; pass --yes to send anyway",
            code=ErrorCode.INVALID_REQUEST,
        )
    session.output.err.write(f"{question} [y/N] ")
    session.output.err.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def isatty(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (``False`` for closed or fake streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(slots=True)
class Uploaded:
    """What the server did with the items: names ``added``, ``updated`` and ``unchanged``."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def send(
    session: Session,
    items: list[Item],
    *,
    yes: bool,
    quiet: bool = False,
    stdin: TextIO | None = None,
) -> Uploaded | None:
    """Steps 2-4 for items that passed the guard.

    Args:
        session: The session (its plan receives the items).
        items: ``{"kind", "name", "content"}`` dicts.
        yes: Skip the question above the threshold.
        quiet: Print no manifest (``tell``'s automatic update).
        stdin: Where the answer is read (tests).

    Returns:
        What the server did, or ``None`` when the user declined.

    Raises:
        PlancastError: the question cannot be asked (no terminal), or the server refused.
    """
    threshold = confirm_threshold()  # a bad PLANCAST_CONFIRM_TOKENS fails before any upload
    done = Uploaded()
    current = list(session.api.get(f"/plans/{session.plan_id}/context")["items"])
    items = _drop_unchanged(items, current, done)
    if not items:
        return done
    manifest = Manifest.build(items, plan_model(session))
    if not quiet:
        session.output.note(manifest.summary())
    if manifest.tokens > threshold and not yes:
        question = (
            f"~{manifest.tokens:,} tokens is above PLANCAST_CONFIRM_TOKENS ({threshold:,}); upload?"
        )
        if not confirm(session, question, stdin):
            session.output.note("cancelled; nothing was sent")
            return None
    batches = _batches(items)
    sizes = [_batch_bytes(batch) for batch in batches]
    show = len(batches) > 1 or is_large(len(items), sum(sizes))
    with Progress(session.output.err, "uploading", sum(sizes), show=show, unit="bytes") as bar:
        for batch, size in zip(batches, sizes, strict=True):
            result = session.api.post(f"/plans/{session.plan_id}/context", {"items": batch})
            # The server replaces a file, tree or URL of the same name: "updated".
            done.added += result["added"]
            done.updated += result["updated"]
            done.unchanged += result["unchanged"]
            bar.advance(size)
    return done


def _drop_unchanged(
    items: list[Item], current: Sequence[dict[str, Any]], done: Uploaded
) -> list[Item]:
    """Files, trees and URLs already in the context with the same content are not sent again.

    The server would answer "unchanged" for a file anyway; skipping it here keeps a repeated
    ``load -r .`` from uploading (and asking about) what the server already has.
    """
    stored = {(i["kind"], i["name"]): i["sha256"] for i in current}
    kept = []
    for item in items:
        key = (item["kind"], item["name"])
        if key[0] in _KEYED_KINDS and stored.get(key) == content_sha256(item["content"]):
            done.unchanged.append(item["name"])
        else:
            kept.append(item)
    return kept


def _item_bytes(item: Item) -> int:
    return len(item["content"].encode("utf-8", "surrogatepass")) + len(item["name"]) + 64


def _batch_bytes(batch: Sequence[Item]) -> int:
    return sum(_item_bytes(item) for item in batch)


def _batches(items: Sequence[Item]) -> list[list[Item]]:
    """Items in request-sized groups, in order (an item larger than the limit goes alone)."""
    batches: list[list[Item]] = [[]]
    size = 0
    for item in items:
        length = _item_bytes(item)
        if batches[-1] and size + length > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += length
    return batches
