"""Choosing the model and gathering its provider's credentials from the environment.

Keys are read from the environment when a stream starts, sent with that one
request, and never written anywhere by the client. Only the provider that the
model needs gets its key sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from plancast.shared import (
    DEFAULT_MODELS,
    PROVIDERS,
    ErrorCode,
    ModelSpec,
    PlancastError,
    ProviderCredentials,
)

# When no model is named, the first provider configured in the environment wins.
_AUTO_ORDER = (
    ("anthropic", "ANTHROPIC_API_KEY"),
    ("openai", "OPENAI_API_KEY"),
    ("openai", "OPENAI_BASE_URL"),
    ("azure", "AZURE_OPENAI_API_KEY"),
    ("ollama", "OLLAMA_BASE_URL"),
)


def choose_model(explicit: str | None, environ: Mapping[str, str] | None = None) -> ModelSpec:
    """The model to use: ``--model``, else ``PLANCAST_MODEL``, else the first configured provider.

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
    raise PlancastError(
        "no model provider is configured: set OPENAI_API_KEY or ANTHROPIC_API_KEY, "
        "or OPENAI_BASE_URL for an OpenAI-compatible server, or PLANCAST_MODEL=ollama/MODEL "
        "for a local Ollama",
        code=ErrorCode.MISSING_CREDENTIALS,
    )


def credentials_for(
    model: ModelSpec, environ: Mapping[str, str] | None = None
) -> ProviderCredentials:
    """The credentials ``model``'s provider needs, from the environment.

    Raises:
        PlancastError: ``missing_credentials``, naming the variable to set.
    """
    env = os.environ if environ is None else environ
    spec = PROVIDERS[model.provider]
    key = env.get(spec.key_env or "") or None
    base_url = env.get(spec.base_url_env or "") or None
    api_version = env.get(spec.api_version_env or "") or None
    if spec.needs_key(base_url) and not key:
        raise PlancastError(
            f"{spec.key_env} is not set: the model {model} needs a {model.provider} key. "
            f"Set it in your environment (export {spec.key_env}=…) and try again.",
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
