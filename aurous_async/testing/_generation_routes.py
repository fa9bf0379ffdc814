"""Image and video generation routes (§8.3-§8.6, §8.9, A5-A7, A19).

Create and estimate share one parser per modality, so an estimate refuses exactly what
the create would. Check order: unknown fields, required fields and their formats and
ranges, field combinations, LoRAs, reference images / frames / character, moderation;
create then checks money (402) and the concurrency cap (429).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._errors import ApiError, bad_format, invalid, missing, not_found, out_of_range
from ._generations import Draft
from ._loras import Lora
from ._pagination import parse_limit
from ._pricing import image_price, video_price
from ._routing import Ctx, Reply, Route
from ._serialize import dumps
from ._validate import (
    boolean,
    choice,
    exclusive,
    https_url,
    integer,
    items,
    number,
    reject_unknown,
    text,
)

MAX_PROMPT = 4000
MAX_URL = 2048
MAX_SEED = 2**32 - 1
IMAGE_FIELDS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "lora_id",
        "loras",
        "character_id",
        "width",
        "height",
        "size",
        "steps",
        "guidance_scale",
        "cfg_rescale",
        "denoise_strength",
        "seed",
        "count",
        "enhance_prompt",
        "webhook_url",
        "reference_image_urls",
    }
)
VIDEO_FIELDS = frozenset(
    {
        "video_lora_id",
        "prompt",
        "first_frame_url",
        "last_frame_url",
        "resolution",
        "ratio",
        "duration",
        "seed",
        "camera_fixed",
        "watermark",
        "enhance_prompt",
        "webhook_url",
    }
)
#: A5 ratios as (w, h); presets are ``<tier>_<w>_<h>``.
RATIOS = ((1, 1), (3, 2), (2, 3), (4, 3), (3, 4), (16, 9), (9, 16), (21, 9))
TIER_LONG_SIDE = {"2k": 2048, "4k": 4096}
PLATFORM_STEPS = 30
PLATFORM_GUIDANCE = 7.5
PLATFORM_DENOISE = 0.6
VIDEO_RESOLUTIONS = ("480p", "720p", "1080p")
VIDEO_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
VIDEO_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080}


def _snap(value: float) -> int:
    """To the nearest multiple of 32 (halves round up)."""
    return int((value + 16) // 32) * 32


def _preset_sizes() -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    for tier, long_side in TIER_LONG_SIDE.items():
        for w, h in RATIOS:
            if w >= h:
                size = (long_side, _snap(long_side * h / w))
            else:
                size = (_snap(long_side * w / h), long_side)
            sizes[f"{tier}_{w}_{h}"] = size
    return sizes


SIZE_PRESETS = _preset_sizes()
DEFAULT_SIZE = "2k_1_1"


def video_size(resolution: str, ratio: str) -> tuple[int, int]:
    """Frame size: the short side is the resolution; the long side a multiple of 16."""
    short = VIDEO_SHORT_SIDE[resolution]
    w, _, h = ratio.partition(":")
    a, b = int(w), int(h)
    if a == b:
        return short, short
    long_side = round(short * max(a, b) / min(a, b) / 16) * 16
    return (long_side, short) if a > b else (short, long_side)


# -- shared checks --------------------------------------------------------------------


def _moderate(ctx: Ctx, prompt: str | None) -> None:
    if not prompt:
        return
    lowered = prompt.lower()
    for term in ctx.state.settings.blocked_terms:
        if term.lower() in lowered:
            raise ApiError(
                400,
                "prompt_blocked",
                "The prompt was blocked by content moderation.",
                param="prompt",
            )


def _media_ref(ctx: Ctx, value: object, param: str) -> str:
    """A ``file_`` id of the team (resolved by the file store) or a public https URL."""
    if not isinstance(value, str):
        raise bad_format(param, f"'{param}' must be a string.")
    if value.startswith("file_"):
        ctx.state.files.resolve(ctx.team.id, value, param)
        return value
    if len(value) > MAX_URL:
        raise out_of_range(param, f"'{param}' must be at most {MAX_URL} characters.")
    if not value.startswith("https://") or len(value) == len("https://"):
        raise bad_format(param, f"'{param}' must be a file_ id or an https:// URL.")
    return value


def _lora(ctx: Ctx, ref: str, kind: str, param: str) -> Lora:
    lora = ctx.state.generations.loras.resolve(ctx.team.id, ref)
    if lora is None:
        raise not_found("LoRA", param)
    if lora.kind != kind:
        raise invalid(
            "unsupported_lora_for_mode",
            f"LoRA {ref!r} is a {lora.kind} style and cannot be used for {kind} generation.",
            param,
        )
    return lora


def _webhook_url(ctx: Ctx, body: Mapping[str, object]) -> str | None:
    url = text(body, "webhook_url")
    return None if url is None else https_url(ctx.state, url, "webhook_url")


# -- images -----------------------------------------------------------------------------


def _image_size(body: Mapping[str, object]) -> tuple[int, int, str | None]:
    size = body.get("size")
    has_w, has_h = body.get("width") is not None, body.get("height") is not None
    if size is not None and (has_w or has_h):
        raise invalid(
            "parameter_invalid_combination",
            "Send either 'size' or 'width' and 'height', not both.",
            "size",
        )
    if has_w != has_h:
        raise missing("height" if has_w else "width")
    if has_w:
        width = integer(body, "width", lo=1024, hi=4096)
        height = integer(body, "height", lo=1024, hi=4096)
        assert width is not None
        assert height is not None
        return _snap(width), _snap(height), None
    preset = choice(body, "size", tuple(SIZE_PRESETS)) or DEFAULT_SIZE
    width, height = SIZE_PRESETS[preset]
    return width, height, preset


def _lora_stack(ctx: Ctx, body: Mapping[str, object]) -> list[Lora] | None:
    lora_id = text(body, "lora_id")
    if lora_id is not None:
        return [_lora(ctx, lora_id, "image", "lora_id")]
    entries = items(body, "loras", min_items=1, max_items=4)
    if entries is None:
        return None
    stack: list[Lora] = []
    for index, entry in enumerate(entries):
        param = f"loras[{index}]"
        if not isinstance(entry, dict):
            raise bad_format(param, f"'{param}' must be an object with 'lora' and 'weight'.")
        for name in entry:
            if name not in ("lora", "weight"):
                raise bad_format(f"{param}.{name}", f"Unknown field '{param}.{name}'.")
        ref = entry.get("lora")
        if ref is None:
            raise missing(f"{param}.lora")
        if not isinstance(ref, str) or not ref:
            raise bad_format(f"{param}.lora", f"'{param}.lora' must be a LoRA id or slug.")
        weight = entry.get("weight")
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise bad_format(f"{param}.weight", f"'{param}.weight' must be a number.")
            if not 0.0 <= weight <= 2.0:
                raise out_of_range(f"{param}.weight", f"'{param}.weight' must be 0.0-2.0.")
        lora = _lora(ctx, ref, "image", f"{param}.lora")
        if lora in stack:
            raise bad_format(f"{param}.lora", f"LoRA {ref!r} appears twice in 'loras'.")
        stack.append(lora)
    return stack


def parse_image(ctx: Ctx, body: Mapping[str, object]) -> Draft:
    """Validate a POST /v1/images (or estimate) body into a Draft."""
    reject_unknown(body, IMAGE_FIELDS)
    prompt = text(body, "prompt", required=True, max_len=MAX_PROMPT)
    negative = text(body, "negative_prompt", max_len=MAX_PROMPT)
    exclusive(body, "lora_id", "loras", "parameter_invalid_combination")
    exclusive(body, "character_id", "reference_image_urls", "mutually_exclusive_input")
    width, height, preset = _image_size(body)
    steps = integer(body, "steps", lo=1, hi=100)
    guidance = number(body, "guidance_scale", lo=0.1, hi=30)
    cfg_rescale = number(body, "cfg_rescale", lo=0, hi=1)
    denoise = number(body, "denoise_strength", lo=0, hi=1)
    seed = integer(body, "seed", lo=0, hi=MAX_SEED)
    count = integer(body, "count", lo=1, hi=4) or 1
    enhance_prompt = boolean(body, "enhance_prompt") or False
    webhook_url = _webhook_url(ctx, body)
    character_id = text(body, "character_id")
    refs = items(body, "reference_image_urls", min_items=1, max_items=6)
    loras = _lora_stack(ctx, body)
    references = (
        [_media_ref(ctx, ref, f"reference_image_urls[{i}]") for i, ref in enumerate(refs)]
        if refs is not None
        else None
    )
    if character_id is not None:
        ctx.state.characters.require_ready(ctx.team.id, character_id)
    _moderate(ctx, prompt)
    style = loras[0] if loras else None
    base, enhance = image_price(count, enhance_prompt)
    return Draft(
        media_type="image",
        prompt=prompt,
        base=base,
        enhance=enhance,
        width=width,
        height=height,
        inference_type="i2i" if character_id is not None or references else "t2i",
        loras=loras,
        negative_prompt=negative,
        image_count=count,
        size_preset=preset,
        steps=steps or (style.default_steps if style else None) or PLATFORM_STEPS,
        guidance_scale=guidance
        or (style.default_guidance_scale if style else None)
        or PLATFORM_GUIDANCE,
        cfg_rescale=cfg_rescale if cfg_rescale is not None else 0.0,
        denoise_strength=denoise
        if denoise is not None
        else (style.default_denoise_strength if style else None) or PLATFORM_DENOISE,
        seed=seed,
        character_id=character_id,
        reference_image_urls=references,
        enhance_prompt=enhance_prompt,
        webhook_url=webhook_url,
    )


# -- videos -----------------------------------------------------------------------------


def parse_video(ctx: Ctx, body: Mapping[str, object]) -> Draft:
    """Validate a POST /v1/videos (or estimate) body into a Draft."""
    reject_unknown(body, VIDEO_FIELDS)
    lora_ref = text(body, "video_lora_id", required=True)
    assert lora_ref is not None
    prompt = text(body, "prompt", max_len=MAX_PROMPT)
    resolution = choice(body, "resolution", VIDEO_RESOLUTIONS)
    ratio = choice(body, "ratio", VIDEO_RATIOS)
    duration = integer(body, "duration", lo=2, hi=12)
    seed = integer(body, "seed", lo=-1, hi=MAX_SEED)
    camera_fixed = boolean(body, "camera_fixed") or False
    watermark = boolean(body, "watermark") or False
    enhance_prompt = boolean(body, "enhance_prompt") or False
    webhook_url = _webhook_url(ctx, body)
    first_raw, last_raw = body.get("first_frame_url"), body.get("last_frame_url")
    if last_raw is not None and first_raw is None:
        raise missing("first_frame_url")
    lora = _lora(ctx, lora_ref, "video", "video_lora_id")
    first = _media_ref(ctx, first_raw, "first_frame_url") if first_raw is not None else None
    last = _media_ref(ctx, last_raw, "last_frame_url") if last_raw is not None else None
    _moderate(ctx, prompt)
    resolution = resolution or lora.default_resolution
    ratio = ratio or lora.default_ratio
    duration = duration or lora.default_duration
    width, height = video_size(resolution, ratio)
    base, enhance = video_price(duration, resolution, enhance_prompt)
    return Draft(
        media_type="video",
        prompt=prompt,
        base=base,
        enhance=enhance,
        width=width,
        height=height,
        inference_type="i2v" if first is not None else "t2v",
        loras=[lora],
        seed=seed,
        video_duration=duration,
        video_resolution=resolution,
        video_ratio=ratio,
        video_camera_fixed=camera_fixed,
        watermark=watermark,
        first_frame_url=first,
        last_frame_url=last,
        enhance_prompt=enhance_prompt,
        webhook_url=webhook_url,
    )


# -- handlers ---------------------------------------------------------------------------


async def _create(ctx: Ctx, draft: Draft) -> Reply:
    row = ctx.state.generations.create(
        ctx.team,
        ctx.key.id if ctx.key is not None else None,
        draft,
        ctx.version,
        ctx.request_id,
    )
    return Reply(status=201, data=row.json_bytes())


async def create_image(ctx: Ctx) -> Reply:
    """Create an image generation."""
    return await _create(ctx, parse_image(ctx, await ctx.json()))


async def estimate_image(ctx: Ctx) -> Reply:
    """Estimate the credit cost of an image generation."""
    return Reply(body=parse_image(ctx, await ctx.json()).estimate_json())


async def create_video(ctx: Ctx) -> Reply:
    """Create a video generation."""
    return await _create(ctx, parse_video(ctx, await ctx.json()))


async def estimate_video(ctx: Ctx) -> Reply:
    """Estimate the credit cost of a video generation."""
    return Reply(body=parse_video(ctx, await ctx.json()).estimate_json())


async def list_generations(ctx: Ctx) -> Reply:
    """List image and video generations, newest first."""
    query = ctx.query
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise invalid(
            "parameter_invalid_combination",
            "Use starting_after or ending_before, not both.",
            "ending_before",
        )
    limit = parse_limit(ctx.request)
    rows, has_more, cursor = ctx.state.generations.page(
        ctx.team.id, limit, after or None, before or None
    )
    data = b"[" + b",".join(row.json_bytes() for row in rows) + b"]"
    tail = dumps({"has_more": has_more, "next_cursor": cursor})
    return Reply(data=b'{"object":"list","data":' + data + b"," + tail[1:])


async def get_generation(ctx: Ctx) -> Reply:
    """Get one generation (img_ or vid_)."""
    return Reply(data=ctx.state.generations.get(ctx.team.id, ctx.match["id"]).json_bytes())


async def cancel_generation(ctx: Ctx) -> Reply:
    """Cancel a queued or processing generation (img_ or vid_)."""
    store = ctx.state.generations
    row = store.cancel(store.get(ctx.team.id, ctx.match["id"]))
    return Reply(data=row.json_bytes())


ROUTES: list[Route] = [
    Route(
        "POST",
        "/v1/images",
        create_image,
        bucket="images_post",
        scope="write",
        idempotent=True,
        success=201,
        summary="Create an image generation",
    ),
    Route(
        "POST",
        "/v1/images/estimate",
        estimate_image,
        bucket="estimate_post",
        scope="write",
        summary="Estimate the credit cost of an image generation",
    ),
    Route("GET", "/v1/images", list_generations, summary="List your generation history"),
    Route("GET", "/v1/images/{id}", get_generation, summary="Get a generation (img_ or vid_)"),
    Route(
        "POST",
        "/v1/images/{id}/cancel",
        cancel_generation,
        bucket="images_post",
        scope="write",
        summary="Cancel a pending or processing generation",
    ),
    Route(
        "POST",
        "/v1/videos",
        create_video,
        bucket="images_post",
        scope="write",
        idempotent=True,
        success=201,
        summary="Create a video generation",
    ),
    Route(
        "POST",
        "/v1/videos/estimate",
        estimate_video,
        bucket="estimate_post",
        scope="write",
        summary="Estimate the credit cost of a video generation",
    ),
]
