"""Cursor pagination shared by every list route (§8.5, §11: one convention)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp.web import Request

from ._errors import ApiError, bad_format, out_of_range

T = TypeVar("T")


def parse_limit(request: Request, default: int = 20, maximum: int = 100) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_format("limit", "limit must be an integer.") from None
    if not 1 <= limit <= maximum:
        raise out_of_range("limit", f"limit must be between 1 and {maximum}.")
    return limit


def paginate(
    request: Request,
    newest_first: Sequence[T],
    key: Callable[[T], str],
    *,
    default_limit: int = 20,
    allow_ending_before: bool = True,
) -> dict[str, object]:
    """Slice ``newest_first`` by ``starting_after`` / ``ending_before`` and ``limit``.

    Returns ``{"rows", "has_more", "next_cursor"}``; ``next_cursor`` is the last row's id.
    """
    limit = parse_limit(request, default_limit)
    after = request.query.get("starting_after")
    before = request.query.get("ending_before") if allow_ending_before else None
    if after and before:
        raise ApiError(
            400,
            "parameter_invalid_combination",
            "Use starting_after or ending_before, not both.",
            param="ending_before",
        )
    ids = [key(row) for row in newest_first]
    if after:
        window = list(newest_first[_index(ids, after, "starting_after") + 1 :])
        rows = window[:limit]
    elif before:
        # Stripe semantics: the rows just newer than the cursor, still newest first.
        window = list(newest_first[: _index(ids, before, "ending_before")])
        rows = window[-limit:]
    else:
        window = list(newest_first)
        rows = window[:limit]
    has_more = len(window) > limit
    return {
        "rows": rows,
        "has_more": has_more,
        "next_cursor": key(rows[-1]) if has_more and rows else None,
    }


def _index(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise ApiError(400, "invalid_format", f"Unknown cursor {cursor!r}.", param=param) from None
