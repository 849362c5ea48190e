"""The REST half of the API client (JSON over HTTP, via httpx).

A plan's context, conversation, changes, versions and streams belong to one of its branches.
Every request under ``/plans/{plan_id}`` carries ``?branch=`` as ``branch_for(plan_id)`` says
(the branch the user checked out), unless the caller names one: one place, so that no command
can forget it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from plancast.client.api.errors import ServerUnavailable, error_from_payload, parse_retry_after
from plancast.client.config import ClientConfig

ATTEMPTS = 3


class RestClient:
    def __init__(
        self,
        config: ClientConfig,
        *,
        timeout: float = 30.0,
        branch_for: Callable[[str], str | None] | None = None,
    ) -> None:
        import httpx  # imported here so that `plancast --help` stays fast

        self._branch_for = branch_for

        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._config = config
        # Loading the CA bundle costs ~60 ms at start-up; plain http never uses it.
        verify = config.server.startswith("https://")
        self._http = httpx.Client(
            base_url=config.server, headers=headers, timeout=timeout, verify=verify
        )
        self._unreachable = (httpx.ConnectError, httpx.ConnectTimeout)
        # Failures after the request may have reached the server: retried with the
        # same Idempotency-Key, so that a write is applied once.
        self._transient = (
            httpx.ReadTimeout,
            httpx.WriteTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.WriteError,
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
        self._add_branch(path, kwargs)
        if method != "GET":
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
            kwargs["headers"] = headers
        for attempt in range(ATTEMPTS):
            try:
                response = self._http.request(method, "/api/v1" + path, **kwargs)
                break
            except self._unreachable:
                raise ServerUnavailable(self._config.server) from None
            except self._transient:
                if attempt + 1 == ATTEMPTS:
                    raise ServerUnavailable(self._config.server) from None
                time.sleep(0.2 * 2**attempt)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            signin = self._config.signin
            raise error_from_payload(
                payload,
                response.status_code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                email=signin.email if signin else None,
            )
        return payload

    def _add_branch(self, path: str, kwargs: dict[str, Any]) -> None:
        if self._branch_for is None or not path.startswith("/plans/"):
            return
        plan_id = path[len("/plans/") :].split("/", 1)[0]
        branch = self._branch_for(plan_id)
        if branch is not None:
            params = dict(kwargs.get("params") or {})
            params.setdefault("branch", branch)
            kwargs["params"] = params

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return self.request("POST", path, json=body or {}, params=params or None)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params or None)

    def patch(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("PATCH", path, json=body or {})
