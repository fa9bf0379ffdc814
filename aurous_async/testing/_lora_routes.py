"""LoRA styles (§8.10): the image list (a bare array), one image style, one video style."""

from __future__ import annotations

from ._errors import ApiError
from ._loras import Lora
from ._routing import Ctx, Reply, Route


def _find(ctx: Ctx, kind: str) -> Lora:
    ref = ctx.match["id"]
    lora = ctx.state.generations.loras.resolve(ctx.team.id, ref)
    if lora is None or lora.kind != kind:
        raise ApiError(404, "resource_not_found", f"LoRA not found: {ref}.")
    return lora


async def list_loras(ctx: Ctx) -> Reply:
    """List available LoRA styles (public ones and the team's private ones)."""
    loras = ctx.state.generations.loras.image_loras(ctx.team.id)
    return Reply(body=[lora.to_json() for lora in loras])


async def get_lora(ctx: Ctx) -> Reply:
    """Get one image LoRA by id, slug or legacy UUID."""
    return Reply(body=_find(ctx, "image").to_json())


async def get_video_lora(ctx: Ctx) -> Reply:
    """Get a video LoRA model by id or slug."""
    return Reply(body=_find(ctx, "video").to_json())


ROUTES: list[Route] = [
    Route("GET", "/v1/loras", list_loras, summary="List available LoRA styles"),
    Route("GET", "/v1/loras/{id}", get_lora, summary="Get a LoRA style by id or slug"),
    Route(
        "GET",
        "/v1/video_loras/{id}",
        get_video_lora,
        summary="Get a video LoRA model by id or slug",
    ),
]
