"""Output bytes (A4, §8.7): token-signed, unauthenticated, unmetered.

Access: a valid ``?token=`` for this exact path, or the owning team's API key
(``X-Api-Key`` / Bearer). Anything else is a 404, exactly like an unknown id, so an
output URL never leaks whether a generation exists. A genuine token past its expiry is a
410 ``output_expired`` (the URL was ours, so nothing leaks). A generation without output
(running, failed, cancelled, ...) is a 422 ``output_not_available``.
"""

from __future__ import annotations

from ._errors import ApiError, not_found
from ._generations import Generation
from ._media import mp4, padded, png
from ._ranges import byte_reply
from ._routing import Ctx, Reply, Route
from ._signing import check_token


def _key_team(ctx: Ctx) -> str | None:
    """The team of a valid API key on the request, if any (no 401 here: 404 instead)."""
    headers = ctx.request.headers
    secret = headers.get("X-Api-Key")
    if not secret:
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else None
    if not secret:
        return None
    key = ctx.state.keys.get(secret)
    if key is None or key.revoked:
        return None
    if key.deactivate_at is not None and ctx.now >= key.deactivate_at:
        return None
    return key.team_id


def _authorize(ctx: Ctx, prefix: str) -> Generation:
    generation_id = ctx.match["id"]
    row = ctx.state.generations.rows.get(generation_id)
    if row is None or not generation_id.startswith(prefix):
        raise not_found("output")
    verdict = check_token(ctx.request.path, ctx.query.get("token"), ctx.now)
    if verdict == "expired":
        raise _expired(row)
    if verdict != "ok" and _key_team(ctx) != row.team_id:
        raise not_found("output")
    if row.status != "succeeded":
        state = "still running" if not row.terminal else row.status
        raise ApiError(
            422,
            "output_not_available",
            f"Generation {row.id} has no output ({state}).",
        )
    if row.expires_at is not None and ctx.now >= row.expires_at:
        raise _expired(row)
    return row


def _expired(row: Generation) -> ApiError:
    return ApiError(
        410,
        "output_expired",
        f"The output of {row.id} is past its retention window; it is no longer stored.",
    )


async def get_image_output(ctx: Ctx) -> Reply:
    """Get a single generated image (PNG bytes; honours Range)."""
    row = _authorize(ctx, "img_")
    raw = ctx.match["n"]
    count = row.draft.image_count or 1
    if not raw.isdigit() or int(raw) >= count:
        raise not_found("output")
    n = int(raw)
    data = png(row.draft.width, row.draft.height, row.draft.prompt or "", row.seed + n)
    return byte_reply(ctx, data, "image/png", {"Cache-Control": "private"})


async def get_video_output(ctx: Ctx) -> Reply:
    """Get the generated video (MP4 bytes; honours Range)."""
    row = _authorize(ctx, "vid_")
    draft = row.draft
    data = mp4(draft.width, draft.height, draft.video_duration or 5, f"{row.id}|{row.seed}")
    data = padded(data, ctx.state.settings.video_output_bytes, row.id)
    return byte_reply(ctx, data, "video/mp4", {"Cache-Control": "private"})


ROUTES: list[Route] = [
    Route(
        "GET",
        "/v1/images/{id}/output/{n}",
        get_image_output,
        bucket=None,
        auth=False,
        summary="Get a single generated image",
    ),
    Route(
        "GET",
        "/v1/videos/{id}/output",
        get_video_output,
        bucket=None,
        auth=False,
        summary="Get the generated video",
    ),
]
