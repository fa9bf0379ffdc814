"""``client.pricing``: the rate card of the applied API version (contract §9)."""

from __future__ import annotations

from .._requester import Call
from ..models import Pricing as PricingModel
from ._base import Resource

__all__ = ["Pricing"]


class Pricing(Resource):
    """The baseline rate card, frozen per ``Aurous-Version``."""

    async def get(
        self, *, timeout: float | None = None, api_version: str | None = None
    ) -> PricingModel:
        """Fetch the rate card (``GET /v1/pricing``) of ``api_version`` or the client's pin."""
        call = Call(
            method="GET",
            path="/v1/pricing",
            route="/v1/pricing",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, PricingModel)
