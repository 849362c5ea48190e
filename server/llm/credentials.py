"""The per-stream credentials holder, inside the stream's worker process (DESIGN invariant 3).

One ``Credentials`` is made in a worker from the sealed credentials its stream's
client sent (``workers/child.py``), borrowed by every model call that stream
makes, and wiped when the stream ends. The worker process then exits, and with
it every copy the SDKs made; the long-lived server never holds one.
"""

from __future__ import annotations

from collections.abc import Iterable

from plancast.server.errors import InvalidRequest
from plancast.shared import PROVIDERS, ErrorCode, PlancastError, ProviderCredentials


class CredentialsWiped(PlancastError):
    code = ErrorCode.INTERNAL


class Credentials:
    """Provider credentials for one stream. Its repr never shows a key."""

    __slots__ = ("_by_provider", "_wiped")

    def __init__(self, items: Iterable[ProviderCredentials]) -> None:
        self._by_provider: dict[str, ProviderCredentials] = {}
        self._wiped = False
        for item in items:
            if item.provider in self._by_provider:
                raise InvalidRequest(f"credentials for {item.provider} were sent twice")
            self._by_provider[item.provider] = item

    def get(self, provider: str) -> ProviderCredentials | None:
        """The credentials for ``provider``, or None when the client sent none.

        Raises:
            CredentialsWiped: the stream has ended; a call that still runs is a bug.
        """
        if self._wiped:
            raise CredentialsWiped("credentials were used after their stream ended")
        return self._by_provider.get(provider)

    def require(self, provider: str) -> ProviderCredentials:
        """Like ``get``, but a provider that needs a key and has none is an error."""
        spec = PROVIDERS[provider]
        found = self.get(provider)
        if found is None:
            found = ProviderCredentials(provider)
        if spec.needs_key(found.base_url) and not found.api_key:
            raise PlancastError(
                f"no {provider} key was sent with this request; set {spec.key_env} "
                "where you run plancast",
                code=ErrorCode.MISSING_CREDENTIALS,
            )
        return found

    def wipe(self) -> None:
        """Drop every reference this holder has to key material. Idempotent."""
        self._by_provider.clear()
        self._wiped = True

    @property
    def wiped(self) -> bool:
        return self._wiped

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._by_provider)

    def __repr__(self) -> str:
        state = "wiped" if self._wiped else ", ".join(self._by_provider) or "none"
        return f"<Credentials {state}>"
