"""Idempotency-Key handling per contract A8 / §7."""

from __future__ import annotations

import enum
import json

import attrs

from ._errors import ApiError

WINDOW_SECONDS = 24 * 3600.0
MAX_KEY_LENGTH = 256
HEADER_NAMES = ("Idempotency-Key", "Aurous-Idempotent-Key", "Aurous-Idempotency-Key")


class Phase(enum.Enum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


@attrs.define
class Entry:
    route: str
    fingerprint: str
    created_at: float
    phase: Phase = Phase.IN_FLIGHT
    status: int = 0
    body: bytes = b""
    content_type: str = "application/json"


def canonical_json(value: object) -> str:
    """Keys in lexicographic order, no whitespace: the body-match form (§7)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def in_use(message: str) -> ApiError:
    return ApiError(409, "idempotency_key_in_use", message, param="Idempotency-Key")


class IdempotencyStore:
    """Per-team keys: in flight, or done with the cached 2xx response."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    def begin(
        self, team_id: str, key: str, route: str, fingerprint: str, now: float
    ) -> Entry | None:
        """Claim ``key``; return a finished entry to replay, or ``None`` to proceed.

        Raises ``ApiError`` 409 when the key is in flight or was used for another body
        or route, and 400 when the key itself is malformed.
        """
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise ApiError(
                400,
                "invalid_format",
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
                param="Idempotency-Key",
            )
        existing = self._entries.get((team_id, key))
        if existing is not None and now - existing.created_at >= WINDOW_SECONDS:
            existing = None
        if existing is not None:
            if existing.route != route or existing.fingerprint != fingerprint:
                raise in_use(
                    "This Idempotency-Key was already used with a different request body "
                    "or route; use a fresh key."
                )
            if existing.phase is Phase.IN_FLIGHT:
                raise in_use("A request with this Idempotency-Key is still in flight.")
            return existing
        self._entries[(team_id, key)] = Entry(route, fingerprint, now)
        return None

    def finish(self, team_id: str, key: str, status: int, body: bytes, content_type: str) -> None:
        """Cache a 2xx for replay; forget anything else so the key can be retried."""
        entry = self._entries.get((team_id, key))
        if entry is None:
            return
        if 200 <= status < 300:
            entry.phase = Phase.DONE
            entry.status = status
            entry.body = body
            entry.content_type = content_type
        else:
            del self._entries[(team_id, key)]
