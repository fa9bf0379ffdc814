"""The 2026-05-15 rate card (contract §9) and the prices it implies."""

from __future__ import annotations

from decimal import Decimal

from ._schema import NUMBER, STRING, const, obj
from ._serialize import money

IMAGE_BASE = Decimal(1)
ENHANCE_PROMPT_MULTIPLIER = Decimal(2)
REFERENCE_IMAGE_PER_IMAGE = Decimal(0)
VIDEO_BASE_PER_SECOND = Decimal("0.5")
RESOLUTION_FACTOR = {"480p": Decimal(1), "720p": Decimal("1.5"), "1080p": Decimal("2.5")}
#: A synthesize-flow character costs four image generations (§11); one pose costs one.
CHARACTER_SYNTHESIS_GENERATIONS = 4


def image_price(count: int, enhance_prompt: bool) -> tuple[Decimal, Decimal]:
    """``(base, enhance)`` for an image request; the total is their sum."""
    base = IMAGE_BASE * count
    enhance = base * (ENHANCE_PROMPT_MULTIPLIER - 1) if enhance_prompt else Decimal(0)
    return base, enhance


def video_price(duration: int, resolution: str, enhance_prompt: bool) -> tuple[Decimal, Decimal]:
    """``(base, enhance)`` for a video: base_per_second x resolution factor x seconds."""
    base = VIDEO_BASE_PER_SECOND * RESOLUTION_FACTOR[resolution] * duration
    enhance = base * (ENHANCE_PROMPT_MULTIPLIER - 1) if enhance_prompt else Decimal(0)
    return base, enhance


BREAKDOWN_SCHEMA = obj({"base": NUMBER, "enhance": NUMBER})
COST_SCHEMA = obj({"amount": NUMBER, "currency": const("credit"), "breakdown": BREAKDOWN_SCHEMA})


def cost_json(base: Decimal, enhance: Decimal) -> dict[str, object]:
    """The ``cost`` object of a generation (§8.2)."""
    return {
        "amount": money(base + enhance),
        "currency": "credit",
        "breakdown": {"base": money(base), "enhance": money(enhance)},
    }


PRICING_SCHEMA = obj(
    {
        "object": const("pricing"),
        "version": STRING,
        "currency": const("credit"),
        "description": STRING,
        "image": obj(
            {
                "base": NUMBER,
                "enhance_prompt_multiplier": NUMBER,
                "reference_image_per_image": NUMBER,
            }
        ),
        "video": obj(
            {
                "base_per_second": NUMBER,
                "resolution_factor": {"type": "object", "additionalProperties": NUMBER},
            }
        ),
    }
)


def rate_card(version: str) -> dict[str, object]:
    return {
        "object": "pricing",
        "version": version,
        "currency": "credit",
        "description": (
            "Baseline rate card per Aurous-Version. Negotiated rates may differ; "
            "call POST /v1/images/estimate for the exact amount."
        ),
        "image": {
            "base": money(IMAGE_BASE),
            "enhance_prompt_multiplier": money(ENHANCE_PROMPT_MULTIPLIER),
            "reference_image_per_image": money(REFERENCE_IMAGE_PER_IMAGE),
        },
        "video": {
            "base_per_second": money(VIDEO_BASE_PER_SECOND),
            "resolution_factor": {k: money(v) for k, v in RESOLUTION_FACTOR.items()},
        },
    }
