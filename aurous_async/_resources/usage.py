"""``client.usage``: aggregated usage and the credit ledger (contract §9, A10, A20)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from .. import _validation as check
from .._requester import Call, Requester
from ..models import UsageBucket, UsageEvent
from ._base import AsyncPager, Page, Resource, page_from, params

__all__ = ["Usage", "UsageEvents"]


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class UsageEvents(Resource):
    """The credit ledger: holds, releases, charges, refunds, top-ups, adjustments."""

    def list(
        self,
        *,
        type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> AsyncPager[UsageEvent]:
        """Iterate ledger events, newest first (``GET /v1/usage/events``).

        Args:
            type: only ``hold``, ``release``, ``charge``, ``refund``, ``topup`` or
                ``adjustment`` rows.
            limit: the page size, 1-100.
            starting_after: start below this ``uev_`` id.
        """
        check.page_limit(limit)
        check.ledger_type(type)

        async def fetch(cursor: str | None) -> Page[UsageEvent]:
            call = Call(
                method="GET",
                path="/v1/usage/events",
                route="/v1/usage/events",
                params=params(type=type, limit=limit, starting_after=cursor),
                idempotent=True,
                timeout=timeout,
                api_version=api_version,
            )
            return page_from(await self._send(call), UsageEvent)

        return AsyncPager(fetch, first_cursor=starting_after)


class Usage(Resource):
    """Usage analytics in time buckets; ``events`` is the credit ledger."""

    def __init__(self, requester: Requester) -> None:
        super().__init__(requester)
        self.events = UsageEvents(requester)

    def list(
        self,
        *,
        start_time: datetime,
        end_time: datetime | None = None,
        bucket_width: str | None = None,
        group_by: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        type: Sequence[str] | None = None,
        api_key_id: str | None = None,
        user_id: str | None = None,
        lora_id: str | None = None,
        character_id: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> AsyncPager[UsageBucket]:
        """Iterate usage buckets, newest first (``GET /v1/usage``).

        Args:
            start_time: the first instant (inclusive); an aware datetime.
            end_time: the end (exclusive); the server's default is now.
            bucket_width: ``1m``, ``5m``, ``15m``, ``1h``, ``1d`` (default) or ``7d``.
            group_by: at most 2 of ``status``, ``api_key_id``, ``user_id``, ``type``.
            status, type: filters (several values allowed).
            limit: buckets per page, 1-100 (the server's default is 24).
        """
        check.usage_query(
            start_time=start_time,
            end_time=end_time,
            bucket_width=bucket_width,
            group_by=group_by,
            limit=limit,
        )
        query = params(
            start_time=_rfc3339(start_time),
            end_time=None if end_time is None else _rfc3339(end_time),
            bucket_width=bucket_width,
            limit=limit,
            api_key_id=api_key_id,
            user_id=user_id,
            lora_id=lora_id,
            character_id=character_id,
        )
        query += params(**{"group_by[]": None if group_by is None else list(group_by)})
        if status:
            query += params(status=",".join(status))
        if type:
            query += params(type=",".join(type))

        async def fetch(cursor: str | None) -> Page[UsageBucket]:
            call = Call(
                method="GET",
                path="/v1/usage",
                route="/v1/usage",
                params=[*query, *params(page_token=cursor)],
                idempotent=True,
                timeout=timeout,
                api_version=api_version,
            )
            return page_from(await self._send(call), UsageBucket, cursor_field="next_page")

        return AsyncPager(fetch)
