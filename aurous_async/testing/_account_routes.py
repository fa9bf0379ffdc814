"""Balance, team, pricing and the usage ledger (contract §9, A10, A20)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._billing import LedgerRow
from ._errors import ApiError
from ._pagination import paginate
from ._pricing import rate_card
from ._routing import Ctx, Reply, Route
from ._schema import NUMBER, STRING, TIMESTAMP, const, cursor_list, obj
from ._serialize import iso, money

if TYPE_CHECKING:
    from ._state import Team

LEDGER_TYPES = ("hold", "release", "charge", "refund", "topup", "adjustment")


BALANCE_SCHEMA = obj(
    {
        "credits": NUMBER,
        "held_credits": NUMBER,
        "available_credits": NUMBER,
        "currency": const("credit"),
        "billing_mode": STRING,
    }
)
TEAM_SCHEMA = obj(
    {
        "id": STRING,
        "name": STRING,
        "credits": NUMBER,
        "created_at": TIMESTAMP,
        "billing_email": STRING,
    },
    optional=("billing_email",),
)


def balance_json(team: Team) -> dict[str, object]:
    """The balance object (§9)."""
    return {
        "credits": money(team.credits),
        "held_credits": money(team.held),
        "available_credits": money(team.available),
        "currency": "credit",
        "billing_mode": team.billing_mode,
    }


async def get_balance(ctx: Ctx) -> Reply:
    return Reply(body=balance_json(ctx.team))


async def get_team(ctx: Ctx) -> Reply:
    team = ctx.team
    body: dict[str, object] = {
        "id": team.id,
        "name": team.name,
        "credits": money(team.credits),
        "created_at": iso(team.created_at),
    }
    if team.billing_email is not None:
        body["billing_email"] = team.billing_email
    return Reply(body=body)


async def get_pricing(ctx: Ctx) -> Reply:
    return Reply(body=rate_card(ctx.version))


async def list_usage_events(ctx: Ctx) -> Reply:
    rows = list(reversed(ctx.state.billing.rows.get(ctx.team.id, [])))
    wanted = ctx.query.get("type")
    if wanted is not None:
        if wanted not in LEDGER_TYPES:
            raise ApiError(
                400,
                "invalid_format",
                f"type must be one of {', '.join(LEDGER_TYPES)}.",
                param="type",
            )
        rows = [row for row in rows if row.type == wanted]
    page = paginate(ctx.request, rows, lambda row: row.id, allow_ending_before=False)
    return Reply(
        body={
            "object": "list",
            "data": [row.to_json() for row in page["rows"]],  # type: ignore[attr-defined]
            "has_more": page["has_more"],
            "next_cursor": page["next_cursor"],
        }
    )


USAGE_EVENTS_SCHEMA = cursor_list(LedgerRow.SCHEMA)

ROUTES: list[Route] = [
    Route("GET", "/v1/balance", get_balance, summary="Get the credit balance"),
    Route("GET", "/v1/team", get_team, summary="Get your team"),
    Route("GET", "/v1/pricing", get_pricing, summary="Get the rate card of the applied version"),
    Route("GET", "/v1/usage/events", list_usage_events, summary="List credit ledger events"),
]
