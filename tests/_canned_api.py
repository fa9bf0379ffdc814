"""A fake API for tests: a small ``aiohttp.web`` app on 127.0.0.1 answering whatever the
test sets, and a client pointed at it (on a fast clock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

from aurous_async import AsyncAurous, RetryPolicy
from aurous_async._clock import ScaledClock

API_KEY = "al_live_" + "c" * 64
#: Retries that wait a millisecond of real time at most (the client's clock runs 1000x).
FAST_RETRY = RetryPolicy(
    max_attempts=3, timeout=60.0, initial_wait=0.001, max_wait=0.01, jitter=0.0
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Answer:
    """One canned response."""

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b"{}"


@attrs.frozen
class Seen:
    """One request as the fake API saw it."""

    method: str
    path: str
    peer_port: int


class CannedApi:
    """Answers every request with ``answer`` (or runs ``handler`` when one is set)."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.handler: Handler | None = None
        self.requests: list[Seen] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(Seen(request.method, request.path, peer[1] if peer else 0))
        if self.handler is not None:
            return await self.handler(request)
        answer = self.answer
        return web.Response(status=answer.status, headers=dict(answer.headers), body=answer.body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app


@contextlib.asynccontextmanager
async def canned_api() -> AsyncIterator[tuple[CannedApi, TestServer]]:
    """A running fake API and its server (the client is made by ``client_for``)."""
    api = CannedApi()
    async with TestServer(api.app(), host="127.0.0.1") as server:
        yield api, server


def client_for(server: TestServer, **options: Any) -> AsyncAurous:
    """A client of the fake API on a clock 1000 times faster than real time."""
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", ScaledClock(1000.0))
    return AsyncAurous(API_KEY, base_url=str(server.make_url("")).rstrip("/"), **options)
