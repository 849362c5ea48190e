"""What every command needs: settings, output, the API client and the project binding.

Everything expensive (the config file, the HTTP client, the project lookup) is made on first
use, and the modules behind them are imported only then, so that commands that need none of it
(``--help``, ``config``, ``completion``, ``load --dry-run``) start fast.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plancast.client.config import ClientConfig, Settings
from plancast.client.ui.output import Output

if TYPE_CHECKING:
    from plancast.client.api.rest import RestClient
    from plancast.client.project import ProjectBinding


class Session:
    def __init__(
        self,
        output: Output,
        *,
        server: str | None = None,
        cwd: Path | None = None,
        flags: dict[str, Any] | None = None,
    ):
        self.output = output
        self.cwd = cwd or Path.cwd()
        self._flags = {**(flags or {}), "server": server}

    @cached_property
    def settings(self) -> Settings:
        """Flag > environment > config file > default; see ``plancast.client.config``."""
        return Settings.load(self._flags)

    @cached_property
    def config(self) -> ClientConfig:
        return ClientConfig.load(self._flags["server"], self.settings)

    @cached_property
    def api(self) -> RestClient:
        from plancast.client.api.rest import RestClient

        return RestClient(self.config, branch_for=self._branch_for)

    def _branch_for(self, plan_id: str) -> str | None:
        """The branch requests about ``plan_id`` go to; None (the server's default) unbound."""
        from plancast.shared import PlancastError

        try:
            return self.binding.branch_for(plan_id)
        except PlancastError:
            return None

    @cached_property
    def binding(self) -> ProjectBinding:
        from plancast.client.project import load_binding

        return load_binding(self.cwd)

    @property
    def plan_id(self) -> str:
        from plancast.client.project import require_plan

        return require_plan(self.binding)

    @property
    def branch(self) -> str:
        """The current plan's checked-out branch (``plancast checkout``)."""
        return self.binding.branch_for(self.plan_id)

    def forget_binding(self) -> None:
        """Re-read the binding on next use (after ``new`` or ``cd`` rewrote it)."""
        self.__dict__.pop("binding", None)

    def close(self) -> None:
        if "api" in self.__dict__:
            self.api.close()
