"""Which requester, poll source and waits a client is built from: plain or traced.

The choice is made once, at client construction. With ``tracing=False``, or when
``opentelemetry-api`` is not installed, the client is built from the plain classes and
nothing of OpenTelemetry is imported; otherwise from the subclasses in ``_otel``, which
record spans and metrics through the OpenTelemetry API (see that module).
"""

from __future__ import annotations

import importlib.util
from typing import NamedTuple

from ._requester import Requester
from ._waits import ApiSource, Waits

__all__ = ["ClientParts", "client_parts"]


class ClientParts(NamedTuple):
    """The classes a client instantiates for its request pipeline and its waits."""

    requester: type[Requester]
    source: type[ApiSource]
    waits: type[Waits]


PLAIN = ClientParts(Requester, ApiSource, Waits)


def client_parts(tracing: bool) -> ClientParts:
    """The traced classes when ``tracing`` is on and ``opentelemetry-api`` is installed."""
    if not tracing or not _otel_installed():
        return PLAIN
    from ._otel import TracedApiSource, TracedRequester, TracedWaits

    return ClientParts(TracedRequester, TracedApiSource, TracedWaits)


def _otel_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # a parent package that is not a package
        return False
