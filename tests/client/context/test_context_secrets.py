"""The secret guard: every credential format is found, never echoed, and ordinary code is quiet.

Every credential here is fabricated at run time from pieces (``"gh" + "p_" + random``), so that
no key-shaped literal sits in the repository for a scanner to flag. None of them is real.
"""

from __future__ import annotations

import random
import string
import sys
from pathlib import Path

import pytest

from plancast.client.context import secrets as secrets_module
from plancast.client.context.secrets import (
    ENTROPY_THRESHOLD,
    RULES,
    Finding,
    find_secrets,
    fold_ascii,
    guard,
    mask,
    redact,
    shannon_entropy,
)

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "_-"
_rng = random.Random(20261105)


def rand(n: int, alphabet: str = ALNUM) -> str:
    """A random string with at least one digit and one letter (as real keys have)."""
    while True:
        value = "".join(_rng.choice(alphabet) for _ in range(n))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def openai_legacy() -> str:
    return "sk" + "-" + rand(48)


def openai_project() -> str:
    return "sk-" + "proj" + "-" + rand(74, URLSAFE) + "T3Blbk" + "FJ" + rand(74, URLSAFE)


def anthropic_key() -> str:
    return "sk-" + "ant-" + "api03-" + rand(93, URLSAFE) + "AA"


def aws_key_id() -> str:
    return "AK" + "IA" + rand(16, string.ascii_uppercase + "234567")


def aws_secret() -> str:
    return rand(40, B64)


def github_classic() -> str:
    return "gh" + "p_" + rand(36)


def github_fine_grained() -> str:
    return "github" + "_pat_" + rand(22) + "_" + rand(59)


def slack_bot() -> str:
    return "xo" + "xb-" + "".join(_rng.choice(string.digits) for _ in range(12)) + "-" + rand(24)


def slack_webhook() -> str:
    alnum_upper = string.ascii_uppercase + string.digits
    return (
        "https://hooks." + "slack.com/services/T"
        + rand(8, alnum_upper) + "/B" + rand(8, alnum_upper) + "/" + rand(24)
    )  # fmt: skip


def stripe_live() -> str:
    return "sk" + "_live_" + "51" + rand(40)


def google_key() -> str:
    return "AI" + "za" + rand(35, URLSAFE)


def private_key_block(kind: str = "RSA ") -> str:
    body = "\n".join(rand(64, B64) for _ in range(6))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def jwt() -> str:
    head, payload = "ey" + "J" + rand(30, URLSAFE), "ey" + "J" + rand(60, URLSAFE)
    return f"{head}.{payload}.{rand(43, URLSAFE)}"


def high_entropy_password() -> str:
    return rand(20, ALNUM + "!@#%^&*")


# (case, text around the secret, the secret, the rule that must find it)
CASES = [
    ("openai legacy", "OPENAI_API_KEY = '{}'", openai_legacy(), "openai-key"),
    ("openai project", 'client = OpenAI(api_key="{}")', openai_project(), "openai-key"),
    ("anthropic", "export ANTHROPIC_API_KEY={}", anthropic_key(), "anthropic-key"),
    ("aws key id", "aws_access_key_id = {}", aws_key_id(), "aws-access-key-id"),
    ("aws secret", "aws_secret_access_key = {}", aws_secret(), "aws-secret-access-key"),
    ("aws secret json", '"AwsSecretAccessKey": "{}"', aws_secret(), "aws-secret-access-key"),
    ("github classic", "token: {}", github_classic(), "github-token"),
    ("github fine-grained", "GH={}", github_fine_grained(), "github-token"),
    ("slack token", 'slack_client = WebClient("{}")', slack_bot(), "slack-token"),
    ("slack webhook", "WEBHOOK = '{}'", slack_webhook(), "slack-webhook"),
    ("google api key", "const key = `{}`;", google_key(), "google-api-key"),
    ("stripe", "STRIPE_KEY={}", stripe_live(), "stripe-key"),
    ("dotenv snake-ish value", "PAYMENT_TOKEN={}", "tok_" + "prod_" + rand(28), "generic-secret"),
    ("rsa private key", "{}", private_key_block(), "private-key"),
    ("pkcs8 private key", "{}", private_key_block(""), "private-key"),
    ("openssh private key", "{}", private_key_block("OPENSSH "), "private-key"),
    ("jwt", "Authorization: Bearer {}", jwt(), "jwt"),
    ("python password", 'DB_PASSWORD = "{}"', high_entropy_password(), "generic-secret"),
    ("annotated", 'api_key: str = "{}"', rand(32), "generic-secret"),
    ("yaml", "  client_secret: {}", rand(24), "generic-secret"),
    ("dotenv", "STRIPE_SECRET={}", rand(32), "generic-secret"),
    ("json", '{{"apiKey": "{}"}}', rand(32), "generic-secret"),
    ("ruby", "config.token => '{}'", rand(30), "generic-secret"),
    ("go", 'password := "{}"', rand(16, ALNUM + "!@#"), "generic-secret"),
]
BY_CASE = pytest.mark.parametrize(
    ("template", "secret", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)


@BY_CASE
def test_each_format_is_found_on_its_line_and_never_echoed(
    template: str, secret: str, rule: str
) -> None:
    text = "import os\n\n" + template.format(secret) + "\nprint('done')\n"
    findings = find_secrets(text)
    assert [f.rule for f in findings] == [rule]
    finding = findings[0]
    assert finding.line == 3
    assert text[finding.start : finding.end].startswith(secret[:10])
    # The mask holds the length and at most the format's public marker, never the value.
    assert f"({finding.end - finding.start} chars)" in finding.masked
    shown = finding.masked.split("…")[0]
    assert secret[len(shown) : len(shown) + 6] not in finding.masked
    middle = len(secret) // 2
    assert secret[middle : middle + 10] not in repr(finding)


@BY_CASE
def test_redact_replaces_the_value_and_keeps_the_rest(
    template: str, secret: str, rule: str
) -> None:
    text = "before\n" + template.format(secret) + "\nafter\n"
    guarded = guard(text, "redact")
    assert guarded.text is not None
    assert f"[REDACTED:{rule}]" in guarded.text
    assert secret not in guarded.text and secret[-16:] not in guarded.text
    assert guarded.text.startswith("before\n") and guarded.text.endswith("\nafter\n")
    # Deterministic: update compares hashes of redacted text.
    assert guard(text, "redact").text == guarded.text


def test_a_private_key_block_is_redacted_to_its_end_line() -> None:
    block = private_key_block("EC ")
    text = f"KEY = '''\n{block}\n'''\n"
    redacted = redact(text, find_secrets(text))
    assert redacted == "KEY = '''\n[REDACTED:private-key]\n'''\n"


# Headers are built from pieces, so that no private-key marker sits in the repository.
PK = "PRIVATE " + "KEY-----"


def test_a_private_key_inside_json_with_escaped_newlines() -> None:
    body = "\\n".join(rand(64, B64) for _ in range(3))
    key = "-----BEGIN " + PK + "\\n" + body + "\\n-----END " + PK + "\\n"
    text = '{"type": "service_account", "private_key": "' + key + '"}'
    findings = find_secrets(text)
    assert [f.rule for f in findings] == ["private-key"]
    assert findings[0].masked.startswith("-----BEGIN " + PK + "…")
    assert "-----END " + PK not in redact(text, findings)


def test_a_private_key_header_alone_is_not_a_finding() -> None:
    code = 'if line.startswith("-----BEGIN RSA ' + PK + '"):\n    kind = "rsa"\n'
    assert find_secrets(code) == []


def test_policies() -> None:
    key = github_classic()
    text = f"x = 1\ntoken = '{key}'\n"
    blocked = guard(text)
    assert blocked.blocked and blocked.text is None and len(blocked.findings) == 1
    allowed = guard(text, "allow")
    assert not allowed.blocked and allowed.text == text and len(allowed.findings) == 1
    clean = guard("x = 1\n")
    assert clean.text == "x = 1\n" and clean.findings == []
    with pytest.raises(ValueError, match="unknown secret policy"):
        guard(text, "shrug")  # type: ignore[arg-type]


def test_several_findings_are_sorted_with_their_lines() -> None:
    text = f"a = '{google_key()}'\n\n\nb = '{aws_key_id()}'\nc = '{jwt()}'\n"
    findings = find_secrets(text)
    assert [(f.rule, f.line) for f in findings] == [
        ("google-api-key", 1),
        ("aws-access-key-id", 4),
        ("jwt", 5),
    ]


def test_a_specific_rule_wins_over_the_generic_one() -> None:
    text = f'OPENAI_API_KEY = "{openai_legacy()}"\n'
    assert [f.rule for f in find_secrets(text)] == ["openai-key"]


def test_an_anthropic_key_is_not_also_an_openai_key() -> None:
    assert [f.rule for f in find_secrets(anthropic_key())] == ["anthropic-key"]


def test_aws_documentation_example_key_ids_are_not_findings() -> None:
    example = "AK" + "IA" + "IOSFODNN7" + "EXAMPLE"
    assert find_secrets(f"aws_access_key_id = {example}\n") == []


# --- no false positives --------------------------------------------------------------------

ORDINARY = [
    'password = os.environ["DB_PASSWORD"]',
    "password = settings.DATABASE_PASSWORD",
    "api_key = get_api_key()",
    "token = self.token",
    "secret = hashlib.sha256(data).hexdigest()",
    'password = "password"',
    'password = "changeme"',
    'API_KEY = "<your-api-key>"',
    'api_key = "${OPENAI_API_KEY}"',
    'token = "{{ secrets.TOKEN }}"',
    'password = "xxxxxxxxxxxxxxxx"',
    'ENV_API_KEY = "ANTHROPIC_API_KEY"',
    'FORCE_CHANGE_PASSWORD = "FORCE_CHANGE_PASSWORD"',
    'token_url = "https://oauth2.googleapis.com/token"',
    'request_token = "3c2c8e9e-9f5b-4d6f-8a7e-1b2c3d4e5f60"',
    'sha = "e3b0c44298fc1c14"',
    "if password == expected_password:",
    "def login(password: str, token: str | None = None) -> bool:",
    "    private_key: PKCS7PrivateKeyTypes,",
    "max_tokens = 4096",
    'arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:MyDatabaseSecret-a1b2c3"',
    "password: ${DB_PASSWORD}",
    "from sklearn.linear_model import LogisticRegression  # sk-learn-compatible estimator",
    'AUTH_HEADER = "Authorization"',
    'fake_token = "fake-token-for-tests-only-1"',
    'password_hint = "Use at least 12 characters, one digit"',
    "password = db_password_v2",
    "API_KEY=__default_api_key__",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_have_no_findings(line: str) -> None:
    assert find_secrets(line + "\n") == []


def test_plancast_s_own_source_has_no_findings() -> None:
    root = Path(__file__).resolve().parents[3]
    checked = 0
    for folder in ("client", "server", "shared", "docs", "scripts"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".toml", ".yaml", ".yml", ".sh"):
                assert find_secrets(path.read_text(encoding="utf-8")) == [], path
                checked += 1
    assert checked > 50


def test_the_standard_library_has_no_findings() -> None:
    """A large body of ordinary Python (minus its test data, which holds real test keys)."""
    stdlib = Path(string.__file__).parent
    paths = [p for p in sorted(stdlib.glob("*.py")) if p.stat().st_size < 1 << 20]
    paths += sorted((stdlib / "email").rglob("*.py")) + sorted((stdlib / "http").rglob("*.py"))
    assert len(paths) > 150
    noisy = {str(p): f for p in paths if (f := find_secrets(p.read_text("utf-8", "replace")))}
    assert noisy == {}


# --- helpers ---------------------------------------------------------------------------------


def test_shannon_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert shannon_entropy("".join(chr(65 + i) for i in range(16))) == pytest.approx(4.0)
    assert shannon_entropy("hunter2hunter2") < ENTROPY_THRESHOLD


def test_mask_shows_only_the_longest_marker_and_the_length() -> None:
    assert mask("sk-proj-abcdef", ("sk-", "sk-proj-")) == "sk-proj-… (14 chars)"
    assert mask("hunter2", ()) == "… (7 chars)"


def test_fold_ascii_keeps_offsets_even_when_lower_would_not() -> None:
    assert fold_ascii("API_Key") == "api_key"
    text = "İ PASSWORD"  # "İ".lower() is two characters
    folded = fold_ascii(text)
    assert len(folded) == len(text) and folded.endswith("password")
    key = rand(24)
    findings = find_secrets(f"İİİ\nDB_PASSWORD = '{key}'\n")
    assert [(f.rule, f.line) for f in findings] == [("generic-secret", 2)]


def test_redact_of_nothing_is_the_text() -> None:
    assert redact("abc", []) == "abc"


def test_rules_have_unique_names_and_descriptions() -> None:
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert all(r.description for r in RULES)
    assert names[-1] == "generic-secret"  # the generic rule yields to every specific one


def test_finding_holds_no_value_field() -> None:
    assert set(Finding.__slots__) == {"rule", "line", "masked", "start", "end"}


def test_speed_is_reasonable_on_a_large_text() -> None:
    """A regression guard against catastrophic backtracking (the target itself is ~30 MB/s)."""
    import time

    text = (Path(secrets_module.__file__).read_text() * 40)[: 4 << 20]
    started = time.perf_counter()
    find_secrets(text)
    assert time.perf_counter() - started < 5.0, sys.version
