"""Rendering pages from the Jinja2 templates in ``templates/``.

Autoescaping is on for every template, and an undefined name is an error rather than an
empty string, so a typo in a template fails its test instead of rendering a blank.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def _when_exact(timestamp: float) -> str:
    """To the second: an audit log orders events that a minute would blur together."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _count(n: int) -> str:
    return f"{n:,}"


_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["when_exact"] = _when_exact
_env.filters["count"] = _count
templates = Jinja2Templates(env=_env)


def render(
    request: Request,
    name: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A page; every template may use ``viewer``, ``error`` and ``notice`` (None if unset)."""
    values: dict[str, Any] = {"viewer": None, "error": None, "notice": None} | context
    return templates.TemplateResponse(request, name, values, status_code=status, headers=headers)


def redirect(path: str) -> Response:
    """After a POST, a GET of the page that shows its outcome (303: a reload does not repost)."""
    return RedirectResponse(path, status_code=303)
