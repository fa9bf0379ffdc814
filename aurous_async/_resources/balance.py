"""``client.balance``: the team's credit balance (contract §9)."""

from __future__ import annotations

from .._requester import Call
from ..models import Balance as BalanceModel
from ._base import Resource

__all__ = ["Balance"]


class Balance(Resource):
    """The credit balance trio: total, held and available."""

    async def get(
        self, *, timeout: float | None = None, api_version: str | None = None
    ) -> BalanceModel:
        """Fetch the balance (``GET /v1/balance``)."""
        call = Call(
            method="GET",
            path="/v1/balance",
            route="/v1/balance",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, BalanceModel)
