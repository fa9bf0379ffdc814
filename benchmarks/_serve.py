"""Serve one aiohttp handler on a free loopback port until killed (benchmark servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_forever(handle: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
    """Answer every route with ``handle``; print the base URL for the parent process."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()
