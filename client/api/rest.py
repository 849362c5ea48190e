"""The REST half of the API client (JSON over HTTP, via httpx)."""

from __future__ import annotations

from typing import Any

from plancast.client.api.errors import ServerUnavailable, error_from_payload
from plancast.client.config import ClientConfig


class RestClient:
    def __init__(self, config: ClientConfig, *, timeout: float = 30.0) -> None:
        import httpx  # imported here so that `plancast --help` stays fast

        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._config = config
        self._http = httpx.Client(base_url=config.server, headers=headers, timeout=timeout)
        self._transport_errors = (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.RemoteProtocolError,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; return its JSON.

        Raises:
            ServerUnavailable: nothing answers at the server URL.
            ApiError: the server answered with an error.
        """
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except self._transport_errors:
            raise ServerUnavailable(self._config.server) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            raise error_from_payload(payload, response.status_code)
        return payload

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return self.request("POST", path, json=body or {}, params=params or None)
