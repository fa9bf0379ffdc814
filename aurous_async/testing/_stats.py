"""Request counters for ``GET /_emulator/stats``: kept even without the request log.

A fleet benchmark counts 429s and duplicate creates across processes; it needs totals,
not a growing list, so one counter per (method, route template, status, bucket).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._generations import Generation

_Key = tuple[str, str, int, "str | None"]


class RequestStats:
    """How many API requests ended how; control traffic is never counted."""

    def __init__(self) -> None:
        self._counts: collections.Counter[_Key] = collections.Counter()

    def count(self, method: str, route: str, status: int, bucket: str | None) -> None:
        self._counts[(method, route, status, bucket)] += 1

    def to_json(self) -> dict[str, object]:
        """Totals, then one row per (method, route template, status, bucket)."""
        by_status: collections.Counter[str] = collections.Counter()
        by_bucket: collections.Counter[str] = collections.Counter()
        by_route: collections.Counter[str] = collections.Counter()
        rows = []
        for (method, route, status, bucket), n in sorted(
            self._counts.items(), key=lambda item: (item[0][1], item[0][0], item[0][2])
        ):
            by_status[str(status)] += n
            by_bucket[bucket or "none"] += n
            by_route[f"{method} {route}"] += n
            rows.append(
                {"method": method, "route": route, "status": status, "bucket": bucket, "count": n}
            )
        return {
            "total": sum(self._counts.values()),
            "by_status": dict(sorted(by_status.items())),
            "by_bucket": dict(sorted(by_bucket.items())),
            "by_route": dict(sorted(by_route.items())),
            "rows": rows,
        }


def generation_counts(rows: Iterable[Generation]) -> dict[str, dict[str, object]]:
    """Per team: how many generations exist, in total and by status."""
    teams: dict[str, collections.Counter[str]] = {}
    for row in rows:
        teams.setdefault(row.team_id, collections.Counter())[row.status] += 1
    return {
        team_id: {"total": sum(statuses.values()), "by_status": dict(sorted(statuses.items()))}
        for team_id, statuses in sorted(teams.items())
    }
