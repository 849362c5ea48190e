"""Built-in ignore rules: likely secrets and bulk that nobody means to send to a model.

These apply even where no ignore file names them (a fresh folder, a repository whose
``.gitignore`` forgot ``.env``). ``ScanOptions(default_ignores=False)`` turns them all off.

Precedence (the choice, and why):

- The defaults are the *lowest*-precedence rules, below the global excludes file. They fill in
  where the user's own files are silent, so any negation the user wrote that matches a path
  (``!.env.test`` in a ``.gitignore`` or a ``.plancastignore``) re-includes it, and
  ``plancast ignore why PATH`` names that line. A user's exclusion wins over a default negation
  the same way (``.env.example`` in ``.gitignore`` keeps it out).
- Unlike git's own rules, the defaults also apply to *tracked* files: a committed ``.env`` is still
  kept back unless a negation re-includes it. Tracking a file says git should keep it, not that
  a model should read it.
- Naming a file explicitly with ``force`` loads it anyway; the secret guard still scans it.

Deliberately *not* defaults: ``build/``, ``dist/``, ``target/``, ``out/``, ``bin/``. Some projects
keep real source there (Chromium's ``build/``, Go's ``bin/`` scripts), and projects that produce
them almost always ignore them already. Generated files that slip through are caught by the size
limit and the binary check rather than by guessing at directory names.
"""

from __future__ import annotations

from plancast.client.context.patterns import Rule, SourceKind, parse_ignore_bytes

__all__ = ["DEFAULT_IGNORES", "PYVENV_MARKER", "default_rules"]

#: ``(pattern, reason)`` in gitignore syntax; later lines win over earlier ones, as in a file.
DEFAULT_IGNORES: tuple[tuple[str, str], ...] = (
    # --- secrets ---------------------------------------------------------------------------
    (".env", "dotenv file: API keys and passwords"),
    (".env.*", "dotenv variants (.env.local, .env.production): same secrets"),
    ("!.env.example", "template with placeholder values, meant to be shared"),
    ("!.env.sample", "template with placeholder values, meant to be shared"),
    ("!.env.template", "template with placeholder values, meant to be shared"),
    ("!.env.dist", "template with placeholder values (Symfony convention)"),
    ("*.pem", "PEM keys and certificate bundles, often with a private key inside"),
    ("*.key", "private keys (TLS, Rails master.key)"),
    ("id_rsa", "SSH private key"),
    ("id_dsa", "SSH private key"),
    ("id_ecdsa", "SSH private key"),
    ("id_ed25519", "SSH private key"),
    ("*.p12", "PKCS#12 bundle with a private key"),
    ("*.pfx", "PKCS#12 bundle with a private key"),
    ("*.jks", "Java keystore"),
    ("*.keystore", "Java/Android keystore"),
    (".npmrc", "may hold npm registry auth tokens"),
    (".pypirc", "PyPI upload credentials"),
    (".netrc", "machine logins and passwords"),
    ("_netrc", "machine logins and passwords (Windows name)"),
    (".git-credentials", "plaintext git credentials"),
    (".htpasswd", "password hashes"),
    ("credentials.json", "Google service-account / OAuth client credentials"),
    ("*.tfstate", "Terraform state stores resource secrets in plaintext"),
    ("*.tfstate.backup", "Terraform state backup, same secrets"),
    (".aws/", "AWS credentials and config"),
    (".ssh/", "SSH keys"),
    (".gnupg/", "GPG keyring"),
    # --- bulk: dependencies, virtualenvs, caches ----------------------------------------------
    ("node_modules/", "installed npm packages: huge and not the project's code"),
    (".venv/", "Python virtualenv"),
    ("venv/", "Python virtualenv"),
    ("__pycache__/", "Python bytecode cache"),
    ("*.py[cod]", "Python bytecode outside __pycache__"),
    ("*.egg-info/", "generated packaging metadata"),
    (".mypy_cache/", "mypy cache"),
    (".pytest_cache/", "pytest cache"),
    (".ruff_cache/", "ruff cache"),
    (".hypothesis/", "Hypothesis example database"),
    (".tox/", "tox environments (full virtualenvs)"),
    (".nox/", "nox environments (full virtualenvs)"),
    (".terraform/", "downloaded Terraform providers"),
    (".gradle/", "Gradle caches"),
    (".next/", "Next.js build output and cache"),
    (".DS_Store", "macOS folder metadata"),
)

#: A directory holding this file is a virtualenv whatever its name (``env/``, ``.py311/``).
PYVENV_MARKER = b"pyvenv.cfg"
#: The line number that ``<default>`` verdicts give for the virtualenv-marker rule.
PYVENV_LINE = len(DEFAULT_IGNORES) + 1
PYVENV_TEXT = "<directory containing pyvenv.cfg>"
PYVENV_REASON = "Python virtualenv (found by its pyvenv.cfg, whatever the directory is called)"


def default_rules() -> list[Rule]:
    """The table above as compiled rules, with source ``<default>`` and the table's line numbers."""
    data = "\n".join(pattern for pattern, _reason in DEFAULT_IGNORES).encode()
    return parse_ignore_bytes(data, source="<default>", kind=SourceKind.DEFAULT)


def pyvenv_rule() -> Rule:
    """A rule object standing for "a directory that contains pyvenv.cfg" in verdicts."""
    return Rule(
        source="<default>",
        kind=SourceKind.DEFAULT,
        line=PYVENV_LINE,
        text=PYVENV_TEXT,
        negated=False,
        dir_only=True,
        basename=True,
        base=b"",
        priority=PYVENV_LINE,
    )


def default_reason(line: int) -> str:
    """Why the default at ``line`` (1-based, as verdicts report it) exists."""
    if line == PYVENV_LINE:
        return PYVENV_REASON
    return DEFAULT_IGNORES[line - 1][1]
