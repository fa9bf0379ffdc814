"""``client.team``: the team the API key belongs to (contract §9)."""

from __future__ import annotations

from .._requester import Call
from ..models import Team as TeamModel
from ._base import Resource

__all__ = ["Team"]


class Team(Resource):
    """The key's team: id, name, credits."""

    async def get(
        self, *, timeout: float | None = None, api_version: str | None = None
    ) -> TeamModel:
        """Fetch the team (``GET /v1/team``)."""
        call = Call(
            method="GET",
            path="/v1/team",
            route="/v1/team",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, TeamModel)
