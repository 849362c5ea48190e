"""The secret guard: credentials inside the text a user is about to send, found before upload.

The ignore rules keep secret *files* out (``.env``, ``*.pem``, see ``defaults.py``). This module
looks *inside* what passed them, because keys also live in ``settings.py``, a test fixture or a
pasted log (DESIGN invariant 6).

Rules:

Rule 1 (formats): each rule in :data:`RULES` recognises one credential format by its fixed
        shape: provider keys (OpenAI ``sk-``/``sk-proj-``, Anthropic ``sk-ant-``), AWS access key
        ids and secret keys, GitHub tokens (``ghp_``…, ``github_pat_``), Slack tokens and webhook
        URLs, Stripe keys, Google API keys, private key blocks and JWTs. The last rule,
        ``generic-secret``, catches assignments to names such as ``password``, ``api_key`` or
        ``client_secret`` whose value has a Shannon entropy of at least
        :data:`ENTROPY_THRESHOLD` bits per character over at least
        :data:`GENERIC_MIN_LENGTH` characters, and is not a placeholder (``<your key>``,
        ``${VAR}``, ``changeme``) or, unquoted, a code reference (``settings.KEY``).
Rule 2 (never echo): a :class:`Finding` holds the rule, the line, the span and a *mask*: the
        format's fixed marker (``ghp_``, ``sk-ant-``; nothing for a password) and the length.
        No character of the secret beyond its public marker is ever kept in a finding, so
        reports, logs and reprs cannot leak it.
Rule 3 (overlaps): when two findings overlap, the earlier rule in :data:`RULES` wins (a specific
        format before the generic rule), so a key is reported and redacted once.
Rule 4 (policy): ``block`` (the default) sends nothing of a text that has a finding; ``redact``
        replaces each finding's span by ``[REDACTED:<rule>]``; ``allow`` sends the text as is.
        Redaction is deterministic, so the same file redacted twice gives the same text (and
        the same hash; ``plancast update`` relies on that).
Rule 5 (known examples): AWS's documented example key ids (ending in ``EXAMPLE``) are not
        findings.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ENTROPY_THRESHOLD",
    "GENERIC_MIN_LENGTH",
    "RULES",
    "Finding",
    "GuardedText",
    "SecretPolicy",
    "SecretRule",
    "find_secrets",
    "fold_ascii",
    "guard",
    "mask",
    "redact",
    "shannon_entropy",
]

#: Bits per character a generic assignment's value needs to count as a secret (Rule 1).
ENTROPY_THRESHOLD = 3.5
#: A generic assignment's value needs at least this many characters (Rule 1).
GENERIC_MIN_LENGTH = 12

SecretPolicy = Literal["block", "redact", "allow"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret found in a text (Rule 2: it holds no secret character).

    Attributes:
        rule: The :class:`SecretRule` name, e.g. ``github-token``.
        line: 1-based line where the secret starts.
        masked: What may be shown instead of the value, e.g. ``ghp_… (40 chars)``.
        start: Offset of the first character of the secret in the text.
        end: Offset just after it.
    """

    rule: str
    line: int
    masked: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One credential format (Rule 1).

    Attributes:
        name: Shown in findings and in ``[REDACTED:<name>]``.
        description: What the format is, for docs and ``--help``-style listings.
        pattern: Group ``secret`` (or the whole match) is the secret's span.
        markers: Public prefixes that a mask may show (the longest one that matches).
        hints: The rule runs only on texts that contain one of these (a cheap prefilter).
        accept: An extra check, given the secret and the match; ``False`` drops the match.
        span: Picks the secret's span from a match (default: group ``secret``, else the match).
        extend: Grows the span, for formats whose end the pattern cannot see (key blocks).
        fold_case: The pattern is written in lower case and runs over the text with ASCII
            letters lowered (the same length, so spans carry over): about ten times faster than
            a case-insensitive pattern in ``re``.
    """

    name: str
    description: str
    pattern: re.Pattern[str]
    markers: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    accept: Callable[[str, re.Match[str]], bool] | None = None
    span: Callable[[re.Match[str]], tuple[int, int]] | None = None
    extend: Callable[[str, int], int] | None = None
    fold_case: bool = False

    def finditer(self, text: str, folded: str | None = None) -> Iterator[tuple[int, int, str]]:
        """``(start, end, value)`` of each match in ``text``.

        ``folded`` is ``text`` with ASCII letters lowered, when the caller has it already.
        """
        if self.hints and not any(hint in text for hint in self.hints):
            return
        subject = text
        if self.fold_case:
            subject = folded if folded is not None else fold_ascii(text)
        group: int | str = "secret" if "secret" in self.pattern.groupindex else 0
        for match in self.pattern.finditer(subject):
            start, end = self.span(match) if self.span is not None else match.span(group)
            if self.accept is not None and not self.accept(text[start:end], match):
                continue
            if self.extend is not None:
                end = self.extend(text, end)
            yield start, end, text[start:end]


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def fold_ascii(text: str) -> str:
    """``text`` with ASCII letters lowered and every other character kept: same length."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


def shannon_entropy(value: str) -> float:
    """Shannon entropy of ``value``'s characters, in bits per character (0 for "")."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def mask(value: str, markers: tuple[str, ...] = ()) -> str:
    """``ghp_… (40 chars)``: the longest public marker ``value`` starts with, and its length."""
    shown = max((m for m in markers if value.startswith(m)), key=len, default="")
    return f"{shown}… ({len(value)} chars)"


# --- the generic rule ---------------------------------------------------------------------

_SECRET_NAMES = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?key|private[_-]?key|credentials?"
)
_GENERIC = re.compile(
    r"(?<![:/@])(?:" + _SECRET_NAMES + r")[\"']?"
    r"(?:\s*:\s*[A-Za-z_][\w\[\]., |]*?)?"  # a type annotation: password: str = "…"
    r"\s*(?:=>|:=|=(?![=>~])|:(?![:=])(?=[ \t]*[\"']|[ \t]+))[ \t]*"
    r"(?:\"(?P<dq>[^\"\\\n]*)\"|'(?P<sq>[^'\\\n]*)'"
    # A bare value (.env, YAML, INI) runs to the end of its line or a comment.
    r"|(?P<bare>[^\s\"'`,;(){}\[\]<>#]++)(?=[ \t]*(?:#[^\n]*)?\r?$))",
    re.MULTILINE,
)
_PLACEHOLDER = re.compile(
    r"example|placeholder|changeme|change[_-]?me|your[_-]|<|>|\{|%\(|%s|xxxx|\*\*\*\*"
    r"|\.\.\.|…|dummy|redacted|fake|mock|://|^arn:",
    re.IGNORECASE,
)
#: A bare value shaped like code: a dotted name (``settings.API_KEY``) or a snake_case name made
#: of words (``db_password_v2``), unlike ``sk_live_51Hx…`` whose last part is random.
_CODE_REFERENCE = re.compile(
    r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|_*[A-Za-z]+[0-9]{0,2}(?:_+[A-Za-z]+[0-9]{0,2})+_*"
)
#: Words and separators only, no digit: ``FORCE_CHANGE_PASSWORD``, ``no-password-required``.
_WORDS = re.compile(r"[A-Za-z]+(?:[-_.:/ ]+[A-Za-z]+)*")
_HEX = re.compile(r"[0-9a-fA-F]+")
#: A UUID is an id (a request token, a resource) far more often than a credential.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Hex values shorter than this are hashes and ids more often than keys.
_MIN_HEX_LENGTH = 20


def _accept_generic(value: str, match: re.Match[str]) -> bool:
    quoted = match.group("bare") is None
    if len(value) < GENERIC_MIN_LENGTH or any(c.isspace() for c in value):
        return False
    if value[0] in "$%" or _PLACEHOLDER.search(value) or _WORDS.fullmatch(value):
        return False
    if (len(value) < _MIN_HEX_LENGTH and _HEX.fullmatch(value)) or _UUID.fullmatch(value):
        return False
    if not quoted:
        # A bare value in code is usually an expression: settings.API_KEY, a variable, True.
        if _CODE_REFERENCE.fullmatch(value):
            return False
        if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
            return False
    return shannon_entropy(value) >= ENTROPY_THRESHOLD


def _generic_span(match: re.Match[str]) -> tuple[int, int]:
    """The span of whichever value group matched (quoted values without their quotes)."""
    for group in ("dq", "sq", "bare"):
        if match.group(group) is not None:
            return match.span(group)
    return match.span()  # pragma: no cover - the pattern always sets one group


# --- private key blocks -------------------------------------------------------------------

_KEY_END = re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY = re.compile(r"(?:[A-Za-z0-9+/=]|\\[nr]|\s)*")


def _to_key_end(text: str, end: int) -> int:
    """Extend a private key's span over its body to the END line (or what is left of the body)."""
    found = _KEY_END.search(text, end, end + 16384)
    if found is not None:
        return found.end()
    body = _KEY_BODY.match(text, end)
    return body.end() if body is not None else end


def _not_aws_example(value: str, match: re.Match[str]) -> bool:
    return "EXAMPLE" not in value


_B = r"(?<![A-Za-z0-9_-])"  # token start
_E = r"(?![A-Za-z0-9_-])"  # token end

#: Every rule, most specific first (Rule 3).
RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private-key",
        "a PEM/OpenSSH/PGP private key block",
        re.compile(
            r"(?P<secret>-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----)"
            r"(?:\\[nr]|\s)+(?:[A-Za-z-]+:[^\n\\]*(?:\\[nr]|\s)+)*[A-Za-z0-9+/=]{32,}"
        ),
        markers=tuple(
            f"-----BEGIN {kind}PRIVATE KEY{block}-----"
            for kind, block in (
                ("", ""),
                ("RSA ", ""),
                ("DSA ", ""),
                ("EC ", ""),
                ("OPENSSH ", ""),
                ("ENCRYPTED ", ""),
                ("PGP ", " BLOCK"),
            )
        ),
        hints=("PRIVATE KEY",),
        extend=_to_key_end,
    ),
    SecretRule(
        "anthropic-key",
        "an Anthropic API key (sk-ant-…)",
        re.compile(_B + r"(?P<secret>sk-ant-[A-Za-z0-9_-]{32,})" + _E),
        markers=("sk-ant-",),
        hints=("sk-ant-",),
    ),
    SecretRule(
        "openai-key",
        "an OpenAI API key (sk-…, sk-proj-…)",
        re.compile(
            _B + r"(?P<secret>sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?"
            r"(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,})" + _E
        ),
        markers=("sk-", "sk-proj-", "sk-svcacct-", "sk-admin-"),
        hints=("sk-",),
    ),
    SecretRule(
        "aws-access-key-id",
        "an AWS access key id (AKIA…, ASIA…)",
        re.compile(r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])"),
        markers=("AKIA", "ASIA", "ABIA", "ACCA"),
        hints=("AKIA", "ASIA", "ABIA", "ACCA"),
        accept=_not_aws_example,
    ),
    SecretRule(
        "aws-secret-access-key",
        "an AWS secret access key assigned to an aws…secret… name",
        re.compile(
            r"(?i:aws)[\w.-]{0,20}?(?i:secret)[\w.-]{0,20}[\"']?\s*(?:=>|:=|[:=])\s*[\"']?"
            r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        hints=("secret", "SECRET", "Secret"),
    ),
    SecretRule(
        "github-token",
        "a GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        re.compile(
            r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36,255}"
            r"|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"
        ),
        markers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    SecretRule(
        "slack-token",
        "a Slack token (xoxb-, xoxp-, xapp- …)",
        re.compile(
            _B + r"(?P<secret>(?:xox[abposre]|xapp)-(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9-]{20,})" + _E
        ),
        markers=("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xapp-"),
        hints=("xox", "xapp-"),
    ),
    SecretRule(
        "slack-webhook",
        "a Slack incoming webhook URL",
        re.compile(
            r"(?P<secret>https://hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"[A-Za-z0-9_/+-]{20,})"
        ),
        markers=("https://hooks.slack.com/",),
        hints=("hooks.slack.com",),
    ),
    SecretRule(
        "stripe-key",
        "a Stripe secret or restricted key (sk_live_…, rk_test_…)",
        re.compile(
            r"(?<![A-Za-z0-9_])(?P<secret>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,})(?![A-Za-z0-9_])"
        ),
        markers=("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        hints=("k_live_", "k_test_"),
    ),
    SecretRule(
        "google-api-key",
        "a Google API key (AIza…)",
        re.compile(_B + r"(?P<secret>AIza[0-9A-Za-z_-]{35})" + _E),
        markers=("AIza",),
        hints=("AIza",),
    ),
    SecretRule(
        "jwt",
        "a JSON Web Token (eyJ….eyJ….…)",
        re.compile(
            _B + r"(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})" + _E
        ),
        markers=("eyJ",),
        hints=("eyJ",),
    ),
    SecretRule(
        "generic-secret",
        "a high-entropy value assigned to a name like password, token, api_key or secret",
        _GENERIC,
        accept=_accept_generic,
        span=_generic_span,
        fold_case=True,
    ),
)


def find_secrets(text: str) -> list[Finding]:
    """Every secret in ``text``, sorted by position (Rules 1-3, 5).

    Args:
        text: The text that would be sent.

    Returns:
        The findings; none holds any character of a secret beyond its public marker.
    """
    kept: list[tuple[int, int, SecretRule, str]] = []
    folded = fold_ascii(text)
    for rule in RULES:
        for start, end, value in rule.finditer(text, folded):
            if any(start < k_end and k_start < end for k_start, k_end, _r, _m in kept):
                continue
            kept.append((start, end, rule, mask(value, rule.markers)))
    kept.sort(key=lambda k: k[0])
    findings = []
    line, counted = 1, 0
    for start, end, rule, masked in kept:
        line += text.count("\n", counted, start)
        counted = start
        findings.append(Finding(rule.name, line, masked, start, end))
    return findings


def redact(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding's span replaced by ``[REDACTED:<rule>]`` (Rule 4)."""
    parts: list[str] = []
    at = 0
    for finding in sorted(findings, key=lambda f: f.start):
        parts.append(text[at : finding.start])
        parts.append(f"[REDACTED:{finding.rule}]")
        at = finding.end
    parts.append(text[at:])
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class GuardedText:
    """What the guard lets through: ``text`` is ``None`` when the policy blocks it."""

    text: str | None
    findings: list[Finding]

    @property
    def blocked(self) -> bool:
        """Whether nothing of the text may be sent."""
        return self.text is None


def guard(text: str, policy: SecretPolicy = "block") -> GuardedText:
    """Apply ``policy`` to ``text`` (Rule 4).

    Args:
        text: The text that would be sent.
        policy: ``block`` (default), ``redact`` or ``allow``.

    Returns:
        The text to send (``None`` when blocked) and the findings, which callers report.

    Raises:
        ValueError: an unknown policy.
    """
    if policy not in ("block", "redact", "allow"):
        raise ValueError(f"unknown secret policy {policy!r}")
    findings = find_secrets(text)
    if not findings or policy == "allow":
        return GuardedText(text, findings)
    if policy == "redact":
        return GuardedText(redact(text, findings), findings)
    return GuardedText(None, findings)
