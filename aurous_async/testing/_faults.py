"""Fault injection: the failures a real network and a real server produce."""

from __future__ import annotations

from typing import Literal

import attrs

FaultKind = Literal[
    "status",
    "delay",
    "drop_before",
    "drop_after_commit",
    "malformed_body",
    "truncated_body",
    "rate_limit",
    "hang",
    "hang_after_commit",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

#: The code a forced 5xx carries, by status (contract §6.3).
SERVER_ERROR_CODES = {
    500: "internal_error",
    502: "provider_unavailable",
    503: "provider_unavailable",
    504: "provider_timeout",
}


@attrs.define
class Fault:
    """One injected failure, applied to the next ``times`` matching requests.

    Args:
        kind: what goes wrong (see ``FaultKind``).
        match: ``"METHOD /path-prefix"``, or a bare path prefix, or ``None`` for any request.
        times: how many matching requests it hits; ``-1`` for every one.
        status: the 5xx status for ``kind="status"``.
        delay: real seconds to stall for ``kind="delay"``; for the ``hang`` kinds, the
            most real seconds to hang (``0``: until the client goes away or the
            emulator stops).
        retry_after: the ``Retry-After`` for ``kind="rate_limit"`` (default: 1).
    """

    kind: FaultKind
    match: str | None = None
    times: int = 1
    status: int = 503
    delay: float = 0.0
    retry_after: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")

    def matches(self, method: str, path: str) -> bool:
        """Whether a request of ``method`` to ``path`` is one this fault hits."""
        if self.match is None:
            return True
        want_method, _, prefix = self.match.partition(" ")
        if not prefix:
            return path.startswith(want_method)
        return method == want_method.upper() and path.startswith(prefix)


class FaultPlan:
    """The injected faults, consumed in order."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None


@attrs.define
class WebhookFault:
    """Misbehaviour of signed endpoint deliveries, until cleared (receiver tests).

    Args:
        duplicate: send every delivery twice (same event id, signed twice).
        skew: seconds added to the signature's ``t=`` (negative: stale, positive: future).
        tamper: change the body after signing it.
        wrong_secret: sign with a secret the endpoint never had.
    """

    duplicate: bool = False
    skew: float = 0.0
    tamper: bool = False
    wrong_secret: bool = False
