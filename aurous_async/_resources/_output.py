"""Fetching output bytes (contract A4, §8.7): signed URLs, no key, no rate bucket."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .._requester import Call
from ._base import Resource

__all__ = ["fetch_output"]


def is_signed(url: str) -> bool:
    """Whether ``url`` carries its own ``?token=`` and so needs no API key."""
    return "token" in parse_qs(urlsplit(url).query)


async def fetch_output(
    resource: Resource,
    url: str,
    *,
    route: str,
    timeout: float | None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET output bytes from a signed URL (no API key) or an API path (with the key).

    Output routes are unmetered and idempotent, so every transient failure is retried.
    """
    call = Call(
        method="GET",
        path=url,
        route=route,
        headers=headers or {},
        idempotent=True,
        authenticated=not is_signed(url),
        metered=False,
        expect_json=False,
        timeout=timeout,
    )
    reply = await resource._send(call)
    return reply.response.body
