"""Credits: balance, holds and the usage ledger (contract A10, A20, §9).

Ledger rows are signed by type (A20): hold, charge and negative adjustments debit;
release, refund, topup and positive adjustments credit. A success releases its hold and
then charges, so the running sum of signed rows is always the available balance.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from ._errors import ApiError
from ._ids import new_id
from ._schema import NUMBER, STRING, TIMESTAMP, const, nullable, obj, one_of
from ._serialize import iso, money

if TYPE_CHECKING:
    from ._state import EmulatorState, Team

BALANCE_LOW_DEBOUNCE = 3600.0
DEBIT_TYPES = frozenset({"hold", "charge"})


@attrs.define
class Hold:
    id: str
    team_id: str
    amount: Decimal
    generation_id: str | None
    open: bool = True


@attrs.frozen
class LedgerRow:
    id: str
    type: str
    amount: Decimal
    created_at: float
    generation_id: str | None
    hold_id: str | None
    description: str
    negative: bool = False

    SCHEMA = obj(
        {
            "id": STRING,
            "object": const("usage_event"),
            "type": one_of("hold", "release", "charge", "refund", "topup", "adjustment"),
            "amount": NUMBER,
            "currency": const("credit"),
            "created_at": TIMESTAMP,
            "generation_id": nullable(STRING),
            "hold_id": nullable(STRING),
            "description": STRING,
        }
    )

    def signed(self) -> Decimal:
        debit = self.type in DEBIT_TYPES or (self.type == "adjustment" and self.negative)
        return -self.amount if debit else self.amount

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "object": "usage_event",
            "type": self.type,
            "amount": money(self.amount),
            "currency": "credit",
            "created_at": iso(self.created_at),
            "generation_id": self.generation_id,
            "hold_id": self.hold_id,
            "description": self.description,
        }


class Billing:
    """Every credit movement of every team goes through here."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self.rows: dict[str, list[LedgerRow]] = {}
        self.holds: dict[str, Hold] = {}

    def _append(self, team: Team, type_: str, amount: Decimal, **fields: object) -> LedgerRow:
        row = LedgerRow(
            id=new_id("uev"),
            type=type_,
            amount=amount,
            created_at=self._state.now(),
            generation_id=fields.get("generation_id"),  # type: ignore[arg-type]
            hold_id=fields.get("hold_id"),  # type: ignore[arg-type]
            description=str(fields.get("description", "")),
            negative=bool(fields.get("negative", False)),
        )
        self.rows.setdefault(team.id, []).append(row)
        return row

    def topup(self, team: Team, amount: Decimal, description: str = "Top-up") -> None:
        team.credits += amount
        self._append(team, "topup", amount, description=description)

    def adjust(self, team: Team, delta: Decimal, description: str = "Adjustment") -> None:
        """Move the total by ``delta`` (an admin adjustment); may fire ``usage.balance_low``."""
        team.credits += delta
        self._append(team, "adjustment", abs(delta), description=description, negative=delta < 0)
        self._maybe_balance_low(team)

    def set_credits(self, team: Team, credits: Decimal) -> None:
        """Move the total to ``credits`` with one adjustment row (test control)."""
        delta = credits - team.credits
        if delta:
            self.adjust(team, delta, "Balance set by the emulator")

    def check_available(self, team: Team, amount: Decimal, code: str = "balance_too_low") -> None:
        """402 when a metered team cannot afford ``amount`` (A10)."""
        if team.billing_mode != "metered" or team.available >= amount:
            return
        raise ApiError(
            402,
            code,
            f"Team available balance is {money(team.available)} credits, "
            f"generation requires {money(amount)}.",
            type="invalid_request",
        )

    def hold(
        self,
        team: Team,
        amount: Decimal,
        generation_id: str | None,
        *,
        code: str = "balance_too_low",
        description: str = "Hold for generation",
    ) -> Hold:
        self.check_available(team, amount, code)
        hold = Hold(new_id("hold"), team.id, amount, generation_id)
        self.holds[hold.id] = hold
        if team.billing_mode == "metered" and amount:
            team.held += amount
            self._append(
                team,
                "hold",
                amount,
                generation_id=generation_id,
                hold_id=hold.id,
                description=description,
            )
        self._maybe_balance_low(team)
        return hold

    def _close(self, hold: Hold) -> Team | None:
        if not hold.open:
            return None
        hold.open = False
        team = self._state.teams[hold.team_id]
        if team.billing_mode != "metered" or not hold.amount:
            return None
        team.held -= hold.amount
        self._append(
            team,
            "release",
            hold.amount,
            generation_id=hold.generation_id,
            hold_id=hold.id,
            description="Hold released",
        )
        return team

    def release(self, hold: Hold) -> None:
        """Give the held credits back (any non-success terminal state)."""
        self._close(hold)

    def commit(self, hold: Hold) -> None:
        """Charge the held credits (success)."""
        team = self._close(hold)
        if team is None:
            return
        team.credits -= hold.amount
        self._append(
            team,
            "charge",
            hold.amount,
            generation_id=hold.generation_id,
            hold_id=hold.id,
            description="Charge for generation",
        )
        self._maybe_balance_low(team)

    def _maybe_balance_low(self, team: Team) -> None:
        threshold = Decimal(str(self._state.settings.balance_low_threshold))
        now = self._state.now()
        if team.billing_mode != "metered" or team.available > threshold:
            return
        if team.balance_low_at is not None and now - team.balance_low_at < BALANCE_LOW_DEBOUNCE:
            return
        team.balance_low_at = now
        self._state.webhooks.publish(
            team.id,
            "usage.balance_low",
            {
                "object": "balance",
                "credits": money(team.credits),
                "held_credits": money(team.held),
                "available_credits": money(team.available),
                "currency": "credit",
                "threshold": money(threshold),
            },
        )
