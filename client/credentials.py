"""Choosing the model and gathering its provider's credentials: the environment, then the keyring.

A provider's key comes from its environment variable (``ANTHROPIC_API_KEY`` …) or, when that is
unset, from the OS keyring (service ``plancast``, user name = the provider's name), where
``plancast keys set PROVIDER`` stores it. The environment variable wins. Keys are read when a
stream starts, sent with that one request, and never written by the client to a file. Only the
provider that the model needs gets its key sent.

The ``keyring`` library is imported only when a key is looked up there (it costs tens of
milliseconds), never for ``--help``. A keyring that cannot be used (no OS backend, as on a
headless server: keyring's ``fail`` backend; the ``null`` one; a plain-file backend, which
keyring itself does not recommend; or any error) is treated as holding no key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from plancast.shared import (
    DEFAULT_MODELS,
    PROVIDERS,
    ErrorCode,
    ModelSpec,
    PlancastError,
    ProviderCredentials,
)

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

KEYRING_SERVICE = "plancast"

# When no model is named, the first provider configured in the environment wins; then the first
# one with a key in the keyring.
_AUTO_ORDER = (
    ("anthropic", "ANTHROPIC_API_KEY"),
    ("openai", "OPENAI_API_KEY"),
    ("openai", "OPENAI_BASE_URL"),
    ("azure", "AZURE_OPENAI_API_KEY"),
    ("ollama", "OLLAMA_BASE_URL"),
)
_AUTO_ORDER_KEYRING = ("anthropic", "openai", "azure")

# Looks up the stored key of a provider (by name); ``None`` when there is none.
KeyLookup = Callable[[str], "str | None"]


def keyring_backend() -> KeyringBackend | None:
    """The OS keyring to keep keys in, or ``None`` when there is no usable one.

    Usable means what keyring calls recommended (priority 1 or more): an OS store such as the
    Secret Service, KWallet, the macOS Keychain or the Windows Credential Manager. That leaves
    out keyring's ``fail`` and ``null`` backends and the plain-file ones of ``keyrings.alt``.
    When keyring chains several stores, the first usable one is returned, so that a key is
    read from where ``plancast keys set`` put it.
    """
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend

        backend = keyring.get_keyring()
        candidates = backend.backends if isinstance(backend, ChainerBackend) else [backend]
        return next((b for b in candidates if _recommended(b)), None)
    except Exception:  # a broken keyring install or config is "no keyring", not a crash
        return None


def _recommended(backend: KeyringBackend) -> bool:
    try:
        return float(backend.priority) >= 1
    except Exception:  # priority raises when the backend is not viable here
        return False


def stored_key(provider: str) -> str | None:
    """The key stored in the OS keyring for ``provider``; ``None`` when none (or no keyring)."""
    backend = keyring_backend()
    if backend is None:
        return None
    try:
        key = backend.get_password(KEYRING_SERVICE, provider)
    except Exception:  # locked, refused, D-Bus gone: no key, and the message says what to set
        return None
    return key or None


def choose_model(
    explicit: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    stored: KeyLookup | None = None,
) -> ModelSpec:
    """The model to use: ``--model``, else ``PLANCAST_MODEL``, else the first configured provider.

    A provider is configured by its environment variables first (in ``_AUTO_ORDER``), then by a
    key in the keyring. ``stored`` looks up a stored key (default: ``stored_key``); it is called
    only when the environment configures nothing.

    Raises:
        PlancastError: ``missing_credentials`` when nothing is configured; the
            message names the variables to set.
    """
    env = os.environ if environ is None else environ
    named = explicit or env.get("PLANCAST_MODEL")
    if named:
        return ModelSpec.parse(named)
    for provider, variable in _AUTO_ORDER:
        if env.get(variable):
            return ModelSpec.parse(DEFAULT_MODELS[provider])
    lookup = stored_key if stored is None else stored
    for provider in _AUTO_ORDER_KEYRING:
        if lookup(provider):
            return ModelSpec.parse(DEFAULT_MODELS[provider])
    raise PlancastError(
        "no model provider is configured: set OPENAI_API_KEY or ANTHROPIC_API_KEY "
        "(or store a key with `plancast keys set PROVIDER`), "
        "or OPENAI_BASE_URL for an OpenAI-compatible server, or PLANCAST_MODEL=ollama/MODEL "
        "for a local Ollama",
        code=ErrorCode.MISSING_CREDENTIALS,
    )


def credentials_for(
    model: ModelSpec,
    environ: Mapping[str, str] | None = None,
    *,
    stored: KeyLookup | None = None,
) -> ProviderCredentials:
    """The credentials ``model``'s provider needs: the environment, then the keyring.

    ``stored`` looks up a stored key (default: ``stored_key``); it is called only when the
    provider's key variable is unset.

    Raises:
        PlancastError: ``missing_credentials``, naming the variable to set and the
            ``plancast keys set`` command.
    """
    env = os.environ if environ is None else environ
    spec = PROVIDERS[model.provider]
    key = env.get(spec.key_env or "") or None
    if key is None and spec.key_env:
        key = (stored_key if stored is None else stored)(model.provider)
    base_url = env.get(spec.base_url_env or "") or None
    api_version = env.get(spec.api_version_env or "") or None
    if spec.needs_key(base_url) and not key:
        raise PlancastError(
            f"{spec.key_env} is not set and no {model.provider} key is in the keyring: the "
            f"model {model} needs a {model.provider} key. Set it in your environment "
            f"(export {spec.key_env}=…) or store it with `plancast keys set {model.provider}`, "
            "and try again.",
            code=ErrorCode.MISSING_CREDENTIALS,
        )
    if model.provider == "azure" and not base_url:
        raise PlancastError(
            f"{spec.base_url_env} is not set: Azure OpenAI needs your resource's endpoint URL.",
            code=ErrorCode.MISSING_CREDENTIALS,
        )
    return ProviderCredentials(
        model.provider, api_key=key, base_url=base_url, api_version=api_version
    )
