"""Baseline: the cheapest possible aiohttp JSON server, on the same core as the emulator.

Output routes (``.../output/...``) answer a blob the size of the emulator's 2k PNG, so
the bytes on the wire match the emulator's for the same traffic mix.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

BODY = b'{"id":"img_x","status":"processing"}'
BLOB = bytes(39_679)


async def handle(request: web.Request) -> web.Response:
    if request.body_exists:
        await request.read()
    if "/output/" in request.path:
        return web.Response(body=BLOB, content_type="image/png")
    return web.Response(body=BODY, content_type="application/json")


async def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
