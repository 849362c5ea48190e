"""``keys``: keep provider keys in the OS keyring instead of the environment.

    plancast keys                   same as ``keys list``
    plancast keys list              per provider: a key in the keyring? its variable set? which wins
    plancast keys set PROVIDER      store a key: asked for with a hidden prompt, or read from stdin
    plancast keys rm PROVIDER       delete the stored key

Rules:

1. A key is never taken from the command line (it would land in the shell's history and the
   process list), never printed, not even in part, and never written to a file by plancast:
   it goes to the OS keyring (service ``plancast``, user name = the provider's name) or nowhere.
2. The environment variable wins over the keyring (``credentials.credentials_for``), and
   ``list`` says which one each provider uses.
3. Without a usable OS keyring (``credentials.keyring_backend``), ``set`` and ``rm`` fail and
   say to use the environment variable; ``list`` still shows the environment.

Needs no server. ``keyring`` is imported only when one of these runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from plancast.client.commands._args import list_or

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from plancast.client.session import Session

ACTIONS = ("list", "set", "rm")


def register(sub: Any) -> None:
    from plancast.shared import PROVIDERS

    providers = [name for name, spec in PROVIDERS.items() if spec.key_env]
    p = sub.add_parser(
        "keys",
        help="store provider keys in the OS keyring: `keys set|list|rm`",
        description="Keep provider keys in the OS keyring (Secret Service, KWallet, macOS "
        "Keychain, Windows Credential Manager) rather than in environment variables. `set` "
        "asks for the key with a hidden prompt, or reads it from stdin when stdin is not a "
        "terminal. An environment variable that is set wins over the keyring.",
    )
    list_or(p, ACTIONS, "list (the default), set PROVIDER, or rm PROVIDER")
    p.add_argument(
        "provider",
        nargs="?",
        choices=providers,
        metavar="PROVIDER",
        help="the provider whose key to set or remove: " + ", ".join(providers),
    )
    p.add_argument("--json", action="store_true", help="`list` as JSON, for scripts")
    p.set_defaults(func=keys)


def keys(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.config import config_error

    if args.action == "list":
        if args.provider is not None:
            raise config_error("`plancast keys list` takes no provider")
        return _list(session, args.json)
    if args.provider is None:
        raise config_error(f"name the provider: `plancast keys {args.action} PROVIDER`")
    if args.json:
        raise config_error("--json is for `plancast keys list`")
    if args.action == "set":
        return _set(session, args.provider)
    return _remove(session, args.provider)


# -- the keyring ------------------------------------------------------------------------------


def _backend_or_fail(provider: str) -> KeyringBackend:
    from plancast.client.config import config_error
    from plancast.client.credentials import keyring_backend
    from plancast.shared import PROVIDERS

    backend = keyring_backend()
    if backend is None:
        variable = PROVIDERS[provider].key_env
        raise config_error(
            "no OS keyring is available here (no Secret Service, KWallet, Keychain or "
            f"Credential Manager that Python's keyring can use): use the environment "
            f"variable instead (export {variable}=…)"
        )
    return backend


def _backend_name(backend: KeyringBackend) -> str:
    try:
        return str(backend.name)
    except Exception:
        return type(backend).__name__


def _safe_detail(exc: Exception, key: str | None = None) -> str:
    """The keyring's own message, unless it could hold the key (then only its type)."""
    text = str(exc).strip()
    if not text or (key and key in text):
        return type(exc).__name__
    return text


def _has_key(backend: KeyringBackend | None, provider: str) -> bool | None:
    """Whether a key is stored; ``None`` when it cannot be told (no keyring, an error)."""
    from plancast.client.credentials import KEYRING_SERVICE

    if backend is None:
        return None
    try:
        return bool(backend.get_password(KEYRING_SERVICE, provider))
    except Exception:
        return None


# -- set --------------------------------------------------------------------------------------


def _read_key(provider: str, variable: str) -> str:
    """The key, from a hidden prompt on a terminal or from all of stdin otherwise."""
    import sys

    from plancast.client.config import config_error
    from plancast.client.ui.output import isatty

    if isatty(sys.stdin):
        import getpass

        try:
            text = getpass.getpass(f"{provider} key (as in {variable}; input hidden): ")
        except EOFError:
            text = ""
    else:
        text = sys.stdin.read()
    key = text.strip()
    if not key:
        raise config_error(f"no key given: nothing stored for {provider}")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        # Not repeated: it is probably a key with something else around it.
        raise config_error(
            "the key must be one word on one line (no spaces, tabs or line breaks); nothing stored"
        )
    return key


def _set(session: Session, provider: str) -> int:
    import os

    from plancast.client.config import config_error
    from plancast.client.credentials import KEYRING_SERVICE
    from plancast.shared import PROVIDERS

    variable = PROVIDERS[provider].key_env or ""
    backend = _backend_or_fail(provider)  # before asking: no typing a key for nothing
    key = _read_key(provider, variable)
    try:
        backend.set_password(KEYRING_SERVICE, provider, key)
    except Exception as exc:
        raise config_error(
            f"the OS keyring did not store the key: {_safe_detail(exc, key)}"
        ) from None
    out = session.output
    out.line(f"stored the {provider} key in the OS keyring ({_backend_name(backend)})")
    if os.environ.get(variable):
        out.note(f"note: {variable} is set, and takes precedence over the keyring", "yellow")
    return 0


# -- rm ---------------------------------------------------------------------------------------


def _remove(session: Session, provider: str) -> int:
    import os

    from plancast.client.config import config_error
    from plancast.client.credentials import KEYRING_SERVICE
    from plancast.shared import PROVIDERS

    variable = PROVIDERS[provider].key_env or ""
    backend = _backend_or_fail(provider)
    out = session.output
    stored = _has_key(backend, provider)
    if stored is False:
        out.line(f"no {provider} key is stored in the OS keyring")
        return 0
    try:
        backend.delete_password(KEYRING_SERVICE, provider)
    except Exception as exc:
        raise config_error(
            f"the OS keyring did not delete the {provider} key: {_safe_detail(exc)}"
        ) from None
    out.line(f"removed the {provider} key from the OS keyring")
    if os.environ.get(variable):
        out.note(f"note: {variable} is still set in the environment", "yellow")
    return 0


# -- list -------------------------------------------------------------------------------------


def _list(session: Session, as_json: bool) -> int:
    import os

    from plancast.client.credentials import keyring_backend
    from plancast.shared import PROVIDERS

    backend = keyring_backend()
    rows: list[dict[str, Any]] = []
    for name, spec in PROVIDERS.items():
        if not spec.key_env:
            continue
        env_set = bool(os.environ.get(spec.key_env))
        stored = _has_key(backend, name)
        uses = "env" if env_set else "keyring" if stored else None
        rows.append(
            {
                "provider": name,
                "env": spec.key_env,
                "env_set": env_set,
                "stored": stored,
                "uses": uses,
                "required": spec.key_required,
            }
        )
    out = session.output
    if as_json:
        out.json({"keyring": _backend_name(backend) if backend else None, "providers": rows})
        return 0
    keyring_text = {True: "stored", False: "-", None: "?" if backend else "n/a"}
    uses_text = {"env": "environment", "keyring": "keyring", None: "-"}
    table = [("provider", "keyring", "environment", "uses")]
    for row in rows:
        env_text = f"{row['env']} {'set' if row['env_set'] else 'unset'}"
        uses = uses_text[row["uses"]]
        if row["uses"] is None and not row["required"]:
            uses = "- (optional)"
        table.append((row["provider"], keyring_text[row["stored"]], env_text, uses))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for i, r in enumerate(table):
        text = "  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3]
        out.line(text, *(("bold",) if i == 0 else ()))
    if backend is None:
        out.line(
            out.style(
                "no OS keyring is available: keys come from the environment variables only",
                "dim",
            )
        )
    else:
        out.line(out.style(f"keyring: {_backend_name(backend)} (service plancast)", "dim"))
    return 0
