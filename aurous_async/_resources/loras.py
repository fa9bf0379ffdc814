"""``client.loras`` and ``client.video_loras``: the styles a team may use (contract §8.10)."""

from __future__ import annotations

from .._requester import Call
from ..models import Lora, VideoLora
from ._base import AsyncPager, Page, Resource, bare_list_page, path_id

__all__ = ["Loras", "VideoLoras"]


class Loras(Resource):
    """Image LoRA styles: public ones and those delivered privately to the team."""

    def list(
        self, *, timeout: float | None = None, api_version: str | None = None
    ) -> AsyncPager[Lora]:
        """Iterate every image LoRA available to the team (``GET /v1/loras``).

        The endpoint answers one bare array, so this is a single page.
        """

        async def fetch(cursor: str | None) -> Page[Lora]:
            call = Call(
                method="GET",
                path="/v1/loras",
                route="/v1/loras",
                idempotent=True,
                timeout=timeout,
                api_version=api_version,
            )
            return bare_list_page(await self._send(call), Lora)

        return AsyncPager(fetch)

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Lora:
        """Fetch one image LoRA by id or slug (``GET /v1/loras/{id}``)."""
        call = Call(
            method="GET",
            path=f"/v1/loras/{path_id(id)}",
            route="/v1/loras/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Lora)


class VideoLoras(Resource):
    """Video models (there is no list endpoint)."""

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> VideoLora:
        """Fetch one video LoRA by id or slug (``GET /v1/video_loras/{id}``)."""
        call = Call(
            method="GET",
            path=f"/v1/video_loras/{path_id(id)}",
            route="/v1/video_loras/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, VideoLora)
