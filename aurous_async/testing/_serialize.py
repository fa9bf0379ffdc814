"""Hand-written JSON helpers. The emulator never uses the SDK's converter."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> RFC 3339 UTC with ``Z`` (second precision, as documented)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """RFC 3339 -> epoch seconds; raises ``ValueError`` on anything else."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return value.timestamp()


def money(amount: Decimal) -> int | float:
    """Credits as a JSON number: whole amounts as integers (``2``), else decimals."""
    normalized = amount.quantize(Decimal("0.0001")).normalize()
    if normalized == normalized.to_integral_value():
        return int(normalized)
    return float(normalized)


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
