"""The store's part of the admin routes (``/_seedtape/health``, ``/_seedtape/stats``).

Importing this module does not import redis: the app imports it with or without a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from seedtape.errors import error_response

if TYPE_CHECKING:
    from seedtape.teams.team import Team


def store_health(team: Team, body: dict[str, Any]) -> Response:
    """Health with the store's state; 503 when ``--store-required`` and the store is away
    (a load balancer then sends traffic to a proxy that can serve it)."""
    state = team.describe()["state"]
    status = 503 if team.required and state == "degraded" else 200
    if status != 200:
        body["status"] = "degraded"
    return JSONResponse({**body, "store": state}, status_code=status)


async def fleet_stats(team: Team | None) -> Response:
    if team is None:
        return error_response(
            400, "scope=fleet needs a shared store: run seedtape serve with --store redis://...", "invalid_request_error", "no_store"
        )
    status, body = await team.fleet_stats()
    return JSONResponse(body, status_code=status)
