"""GET /v1/usage: aggregated usage metrics in time buckets (§9, the current shape).

Buckets sit on a UTC grid of their width (``7d`` buckets start on Mondays) and come newest
first; every bucket of ``[start_time, end_time)`` is listed, empty ones with no groups.
A generation counts in the bucket of its ``created_at``, with its status at query time
in the usage vocabulary (completed / failed / cancelled / processing / pending).
``page_token`` carries the offset and pins ``end_time``; it is bound to the other query
parameters and to the team, and lives 24 h (emulator clock).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from multidict import MultiMapping

from ._errors import bad_format, missing, out_of_range
from ._generations import Generation
from ._json_input import parse as parse_json
from ._pagination import parse_limit
from ._routing import Ctx, Reply, Route
from ._schema import BOOLEAN, INTEGER, NUMBER, STRING, TIMESTAMP, array, const, nullable, obj
from ._serialize import iso, money, parse_iso

DAY = 86400
BUCKET_WIDTHS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": DAY, "7d": 7 * DAY}
MAX_RANGE = {
    "1m": DAY,
    "5m": 7 * DAY,
    "15m": 14 * DAY,
    "1h": 31 * DAY,
    "1d": 366 * DAY,
    "7d": 730 * DAY,
}
#: 1970-01-05 was a Monday: the origin of the 7d grid (the others are whole divisors).
WEEK_ORIGIN = 4 * DAY
GROUP_KEYS = ("status", "api_key_id", "user_id", "type")
STATUS_VALUES = ("completed", "failed", "cancelled", "processing", "pending")
TYPE_VALUES = ("image", "video", "chat", "embedding")
USAGE_STATUS = {
    "succeeded": "completed",
    "failed": "failed",
    "expired": "failed",
    "moderation_rejected": "failed",
    "cancelled": "cancelled",
    "processing": "processing",
    "queued": "pending",
    "pending": "pending",
}
PAGE_TOKEN_TTL = DAY
DEFAULT_LIMIT = 24


def _values(query: MultiMapping[str], name: str) -> list[str]:
    """Repeated, ``name[]`` and comma-separated forms, in order."""
    out: list[str] = []
    for key in (name, f"{name}[]"):
        for raw in query.getall(key, []):
            out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise bad_format(name, f"'{name}' takes a single value.")
    return values[0] if values else None


def _instant(query: MultiMapping[str], name: str) -> float | None:
    raw = _single(query, name)
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise bad_format(name, f"'{name}' must be an RFC 3339 timestamp.") from None


def _enum_list(query: MultiMapping[str], name: str, allowed: tuple[str, ...]) -> list[str]:
    values = _values(query, name)
    for value in values:
        if value not in allowed:
            raise bad_format(name, f"'{name}' values must be among: {', '.join(allowed)}.")
    return values


def _fingerprint(ctx: Ctx) -> str:
    items = sorted((k, v) for k, v in ctx.query.items() if k not in ("page_token", "end_time"))
    end = ctx.query.get("end_time", "")
    raw = json.dumps([ctx.team.id, items, end], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _read_token(ctx: Ctx, token: str) -> tuple[int, float]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload: Any = parse_json(base64.urlsafe_b64decode(padded.encode()))
        offset, end, issued, fingerprint = (
            int(payload["o"]),
            float(payload["e"]),
            float(payload["t"]),
            str(payload["h"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_format("page_token", "Invalid page_token.") from None
    if fingerprint != _fingerprint(ctx):
        raise bad_format("page_token", "page_token does not match these query parameters.")
    if ctx.now - issued > PAGE_TOKEN_TTL:
        raise bad_format("page_token", "page_token has expired; start again without it.")
    return offset, end


def _make_token(ctx: Ctx, offset: int, end: float) -> str:
    payload = {"o": offset, "e": end, "t": ctx.now, "h": _fingerprint(ctx)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class _Filters:
    def __init__(self, query: MultiMapping[str]) -> None:
        self.status = set(_enum_list(query, "status", STATUS_VALUES))
        self.type = set(_enum_list(query, "type", TYPE_VALUES))
        self.api_key_id = _single(query, "api_key_id")
        self.user_id = _single(query, "user_id")
        self.lora_id = _single(query, "lora_id")
        self.character_id = _single(query, "character_id")

    def keep(self, row: Generation) -> bool:
        draft = row.draft
        if self.status and USAGE_STATUS.get(row.status, "pending") not in self.status:
            return False
        if self.type and draft.media_type not in self.type:
            return False
        if self.api_key_id is not None and row.api_key_id != self.api_key_id:
            return False
        if self.user_id is not None:
            return False  # the emulator has no users: nothing was made by one
        if self.lora_id is not None and not any(
            self.lora_id in (lora.id, lora.slug) for lora in draft.loras or ()
        ):
            return False
        return self.character_id is None or draft.character_id == self.character_id


def _group_key(row: Generation, group_by: list[str]) -> tuple[str | None, ...]:
    out: list[str | None] = []
    for name in group_by:
        if name == "status":
            out.append(USAGE_STATUS.get(row.status, "pending"))
        elif name == "type":
            out.append(row.draft.media_type)
        elif name == "api_key_id":
            out.append(row.api_key_id)
        else:
            out.append(None)
    return tuple(out)


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile; ``None`` when nothing finished."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


_COUNT = INTEGER
METRICS_SCHEMA = obj(
    {
        "request_count": _COUNT,
        "successful_count": _COUNT,
        "failed_count": _COUNT,
        "cancelled_count": _COUNT,
        "credits_used": NUMBER,
        "duration_ms_p50": nullable(INTEGER),
        "duration_ms_p95": nullable(INTEGER),
        "image_count": _COUNT,
        "video_seconds": _COUNT,
        "total_input_tokens": _COUNT,
        "total_output_tokens": _COUNT,
    }
)
USAGE_SCHEMA = obj(
    {
        "object": const("list"),
        "data": array(
            obj(
                {
                    "object": const("usage.bucket"),
                    "bucket_start": TIMESTAMP,
                    "bucket_end": TIMESTAMP,
                    "groups": array(
                        obj(
                            {
                                "key": {"type": "object", "additionalProperties": nullable(STRING)},
                                "metrics": METRICS_SCHEMA,
                            }
                        )
                    ),
                }
            )
        ),
        "has_more": BOOLEAN,
        "next_page": nullable(STRING),
    }
)


def _metrics(rows: Iterable[Generation]) -> dict[str, object]:
    requests = succeeded = failed = cancelled = images = seconds = 0
    credits = Decimal(0)
    durations: list[int] = []
    for row in rows:
        requests += 1
        bucket_status = USAGE_STATUS.get(row.status, "pending")
        if bucket_status == "completed":
            succeeded += 1
            if row.draft.media_type == "video":
                seconds += row.draft.video_duration or 0
            else:
                images += row.draft.image_count or 0
        elif bucket_status == "failed":
            failed += 1
        elif bucket_status == "cancelled":
            cancelled += 1
        if row.charged:
            credits += row.charged
        if row.duration_ms is not None:
            durations.append(row.duration_ms)
    durations.sort()
    return {
        "request_count": requests,
        "successful_count": succeeded,
        "failed_count": failed,
        "cancelled_count": cancelled,
        "credits_used": money(credits),
        "duration_ms_p50": _percentile(durations, 0.5),
        "duration_ms_p95": _percentile(durations, 0.95),
        "image_count": images,
        "video_seconds": seconds,
        "total_input_tokens": 0,
        "total_output_tokens": 0,
    }


def _bucket(
    rows: list[Generation], group_by: list[str], start: float, end: float
) -> dict[str, object]:
    groups: dict[tuple[str | None, ...], list[Generation]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, group_by), []).append(row)
    ordered = sorted(groups.items(), key=lambda item: [v or "" for v in item[0]])
    return {
        "object": "usage.bucket",
        "bucket_start": iso(start),
        "bucket_end": iso(end),
        "groups": [
            {"key": dict(zip(group_by, key, strict=True)), "metrics": _metrics(members)}
            for key, members in ordered
        ],
    }


async def get_usage(ctx: Ctx) -> Reply:
    """Aggregated usage metrics in time buckets."""
    query = ctx.query
    start = _instant(query, "start_time")
    if start is None:
        raise missing("start_time")
    width_name = _single(query, "bucket_width") or "1d"
    width = BUCKET_WIDTHS.get(width_name)
    if width is None:
        raise bad_format(
            "bucket_width", f"bucket_width must be one of: {', '.join(BUCKET_WIDTHS)}."
        )
    group_by = _enum_list(query, "group_by", GROUP_KEYS)
    if len(group_by) > 2:
        raise out_of_range("group_by", "group_by takes at most 2 keys.")
    if len(set(group_by)) != len(group_by):
        raise bad_format("group_by", "group_by keys must be distinct.")
    filters = _Filters(query)
    limit = parse_limit(ctx.request, DEFAULT_LIMIT)
    token = _single(query, "page_token")
    offset = 0
    end = _instant(query, "end_time")
    if token is not None:
        offset, end = _read_token(ctx, token)
    elif end is None:
        end = ctx.now
    if end <= start:
        raise out_of_range("end_time", "end_time must be after start_time.")
    if end - start > MAX_RANGE[width_name]:
        raise out_of_range(
            "start_time",
            f"With bucket_width={width_name} the range may span at most "
            f"{MAX_RANGE[width_name] // DAY} days.",
        )
    origin = WEEK_ORIGIN if width_name == "7d" else 0
    first = origin + math.floor((start - origin) / width) * width
    total = math.ceil((end - first) / width)
    store = ctx.state.generations
    data = []
    for index in range(offset, min(total, offset + limit)):
        bucket_start = first + (total - 1 - index) * width
        bucket_end = bucket_start + width
        rows = [
            row
            for row in store.rows_between(
                ctx.team.id, max(start, bucket_start), min(end, bucket_end)
            )
            if filters.keep(row)
        ]
        data.append(_bucket(rows, group_by, bucket_start, bucket_end))
    has_more = offset + limit < total
    return Reply(
        body={
            "object": "list",
            "data": data,
            "has_more": has_more,
            "next_page": _make_token(ctx, offset + limit, end) if has_more else None,
        }
    )


ROUTES: list[Route] = [
    Route("GET", "/v1/usage", get_usage, summary="Aggregated usage metrics"),
]
