"""An aiohttp.web backend on one shared AsyncAurous client.

    AUROUS_API_KEY=al_live_... AUROUS_WEBHOOK_SECRET=whsec_... python aiohttp_app.py

The same routes as ``fastapi_app.py``: ``POST /images``, ``GET /images/{id}``,
``GET /images/{id}/events`` (Server-Sent Events) and ``POST /webhooks``, whose verified
events end the waits on their generation at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from aurous_async import AsyncAurous, InvalidParameterError, NotFoundError
from aurous_async.webhooks import WebhookReceiver

AUROUS = web.AppKey("aurous", AsyncAurous)
WEBHOOKS = web.AppKey("webhooks", WebhookReceiver)


async def aurous_client(app: web.Application) -> AsyncIterator[None]:
    # One client for the whole process: one connection pool, one rate governor.
    receiver = WebhookReceiver(os.environ["AUROUS_WEBHOOK_SECRET"])
    async with AsyncAurous() as client:  # AUROUS_API_KEY, AUROUS_BASE_URL
        client.attach_webhooks(receiver)
        app[AUROUS] = client
        app[WEBHOOKS] = receiver
        yield


async def create_image(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        image = await request.app[AUROUS].images.create(
            prompt=body.get("prompt"), size=body.get("size")
        )
    except InvalidParameterError as exc:
        return web.json_response({"detail": exc.message, "param": exc.param}, status=422)
    return web.json_response(image.to_dict(), status=201)


async def get_image(request: web.Request) -> web.Response:
    try:
        image = await request.app[AUROUS].images.get(request.match_info["image_id"])
    except NotFoundError:
        raise web.HTTPNotFound(text="no such image") from None
    return web.json_response(image.to_dict())


async def follow_image(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    # One event per status change, the last one terminal. A browser that goes away
    # cancels this handler, and with it the wait (not the generation).
    async for image in request.app[AUROUS].wait_for(request.match_info["image_id"]):
        event = f"event: {image.status}\ndata: {image.to_json(indent=None)}\n\n"
        await response.write(event.encode())
    await response.write_eof()
    return response


async def webhooks(request: web.Request) -> web.Response:
    # handle(request) reads the raw body and answers with an aiohttp.web.Response.
    return await request.app[WEBHOOKS].handle(request)


def create_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(aurous_client)
    app.router.add_post("/images", create_image)
    app.router.add_get("/images/{image_id}", get_image)
    app.router.add_get("/images/{image_id}/events", follow_image)
    app.router.add_post("/webhooks", webhooks)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), port=8000)
