"""Which request parameters can change a generation's price: one estimate per shape.

The price of an image depends on ``count`` and ``enhance_prompt`` (and perhaps on the
style or size under a negotiated rate card); a video's on its duration, resolution and
``enhance_prompt`` (contract §8.4, §8.9, §9). What never changes it is listed in
``PRICE_FREE``: the prompt, the seed, the callback URL, reference images and the
character (§8.4 says so of the last two). Every other parameter, known or not, counts,
so requests group together only when nothing that might move the price differs.
``create_many(max_cost=...)`` and the CLI both price a batch one shape at a time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["PRICE_FREE", "price_shape"]

#: Request parameters that never change the price.
PRICE_FREE = frozenset(
    {"prompt", "negative_prompt", "seed", "webhook_url", "reference_image_urls", "character_id"}
)


def price_shape(body: Mapping[str, object]) -> str | None:
    """The key shared by request bodies that cost the same: the canonical JSON of the
    parameters that can change the price.

    Returns ``None`` when the shape cannot be decided (a value with no canonical JSON
    form); such a request is priced on its own.
    """
    priced = {name: value for name, value in body.items() if name not in PRICE_FREE}
    try:
        return json.dumps(
            priced, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        return None
