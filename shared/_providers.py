"""Model providers and how a model is named, agreed by client and server.

A model is named ``provider/model-name`` (``anthropic/claude-sonnet-5-5``,
``ollama/llama3.1``). The client reads each provider's credentials from the
environment variables listed here and sends them with a stream request; the
server builds an SDK client from them. Neither side keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ErrorCode, PlancastError


@dataclass(frozen=True, slots=True)
class Provider:
    """How to reach one provider. ``sdk`` is the SDK the server drives."""

    name: str
    sdk: str  # "openai" or "anthropic"
    key_env: str | None
    base_url_env: str | None
    key_required: bool
    default_base_url: str | None = None
    api_version_env: str | None = None

    def needs_key(self, base_url: str | None) -> bool:
        """Whether a request must carry a key.

        OpenAI-compatible servers reached through ``OPENAI_BASE_URL`` (vLLM,
        LM Studio, a local proxy) often need none, so a custom base URL for
        the ``openai`` provider makes the key optional.
        """
        if self.name == "openai" and base_url:
            return False
        return self.key_required


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", key_required=True),
        Provider(
            "anthropic", "anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", key_required=True
        ),
        Provider(
            "azure",
            "openai",
            "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_ENDPOINT",
            key_required=True,
            api_version_env="OPENAI_API_VERSION",
        ),
        Provider(
            "ollama",
            "openai",
            "OLLAMA_API_KEY",
            "OLLAMA_BASE_URL",
            key_required=False,
            default_base_url="http://127.0.0.1:11434/v1",
        ),
    )
}

DEFAULT_MODELS: dict[str, str] = {
    "openai": "openai/gpt-5.5",
    "anthropic": "anthropic/claude-sonnet-5-5",
    "azure": "azure/gpt-5.5",
    "ollama": "ollama/llama3.1",
}


_MAX_MODEL_CHARS = 200


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse ``provider/model``.

        Raises:
            PlancastError: with code ``invalid_request`` for an unknown provider
                or a missing model name.
        """
        text = text.strip()
        if len(text) > _MAX_MODEL_CHARS or not text.isprintable():
            # Stored with every stream and usage row, in a column of this width.
            raise PlancastError(
                f"a model name has at most {_MAX_MODEL_CHARS} printable characters",
                code=ErrorCode.INVALID_REQUEST,
            )
        provider, sep, name = text.partition("/")
        if not sep or not name:
            # The value is not repeated: a mistyped model can be a pasted key.
            raise PlancastError(
                f"a model must be written provider/model, e.g. {DEFAULT_MODELS['openai']}",
                code=ErrorCode.INVALID_REQUEST,
            )
        if provider not in PROVIDERS:
            known = ", ".join(sorted(PROVIDERS))
            raise PlancastError(
                f"unknown provider in the model name; known providers: {known}",
                code=ErrorCode.INVALID_REQUEST,
            )
        return cls(provider, name)

    def __str__(self) -> str:
        return f"{self.provider}/{self.name}"
