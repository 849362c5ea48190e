"""What every command needs: settings, output, the API client and the project binding.

Everything expensive (the HTTP client, the project lookup) is made on first use,
so that commands that need none of it start fast.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from plancast.client.api.rest import RestClient
from plancast.client.config import ClientConfig
from plancast.client.project import ProjectBinding, load_binding, require_plan
from plancast.client.ui.output import Output


class Session:
    def __init__(self, output: Output, *, server: str | None = None, cwd: Path | None = None):
        self.output = output
        self.cwd = cwd or Path.cwd()
        self._server = server

    @cached_property
    def config(self) -> ClientConfig:
        return ClientConfig.load(self._server)

    @cached_property
    def api(self) -> RestClient:
        return RestClient(self.config)

    @cached_property
    def binding(self) -> ProjectBinding:
        return load_binding(self.cwd)

    @property
    def plan_id(self) -> str:
        return require_plan(self.binding)

    def close(self) -> None:
        if "api" in self.__dict__:
            self.api.close()
