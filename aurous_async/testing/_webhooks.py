"""Webhook endpoints and signed deliveries: not written yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._state import EmulatorState


class WebhookHub:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def publish(self, team_id: str, event_type: str, data: dict[str, object]) -> None:
        """Deliver ``event_type`` to every active endpoint of the team subscribed to it."""

    def callback(self, url: str, event: str, data: dict[str, object]) -> None:
        """Per-generation ``webhook_url`` callback (A12)."""

    async def run(self) -> None:
        """Background delivery worker; returns when cancelled (closes its session)."""
