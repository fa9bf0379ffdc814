"""Baseline: the cheapest possible aiohttp JSON server, on the same core as the emulator.

Output routes (``.../output/...``) answer a blob the size of the emulator's 2k PNG, so
the bytes on the wire match the emulator's for the same traffic mix.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._serve import serve_forever

BODY = b'{"id":"img_x","status":"processing"}'
BLOB = bytes(39_679)


async def handle(request: web.Request) -> web.Response:
    if request.body_exists:
        await request.read()
    if "/output/" in request.path:
        return web.Response(body=BLOB, content_type="image/png")
    return web.Response(body=BODY, content_type="application/json")


if __name__ == "__main__":
    asyncio.run(serve_forever(handle))
