"""REST routes (JSON), one module per resource.

Each handler parses, authorizes, calls the domain, renders.

Resources are scoped to the caller's org by the domain queries themselves; a
plan of another org is "not found", never "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

from starlette.routing import Route

from plancast.server.web.rest import (
    accounts,
    admin,
    changes,
    context,
    convo,
    health,
    history,
    lifecycle,
    models,
    orgs,
    projects,
    review,
    streams,
    usage,
)
from plancast.server.web.rest.health import VERSION

ROUTES: list[Route] = [
    *health.ROUTES,
    *projects.ROUTES,
    *streams.ROUTES,
    *context.ROUTES,
    *convo.ROUTES,
    *changes.ROUTES,
    *review.ROUTES,
    *usage.ROUTES,
    *history.ROUTES,
    *models.ROUTES,
]

TEAM_ROUTES: list[Route] = [*accounts.ROUTES, *orgs.ROUTES, *lifecycle.ROUTES, *admin.ROUTES]
"""Accounts, orgs, invites, data lifecycle, audit and org usage: served in team mode only
(local mode has one implicit user)."""

__all__ = ["ROUTES", "TEAM_ROUTES", "VERSION"]
