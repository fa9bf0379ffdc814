"""A FastAPI backend on one shared AsyncAurous client.

    AUROUS_API_KEY=al_live_... AUROUS_WEBHOOK_SECRET=whsec_... uvicorn fastapi_app:app

* ``POST /images`` starts a generation and returns it at once (201);
* ``GET /images/{id}/events`` streams its status changes as Server-Sent Events;
* ``GET /images/{id}`` returns it as JSON;
* ``POST /webhooks`` receives Aurous' signed deliveries: register this URL once with
  ``client.webhook_endpoints.create(url=..., events=["*"])`` and keep the secret it
  returns in ``AUROUS_WEBHOOK_SECRET``. Each verified event ends the waits on its
  generation at once, so the event stream above needs next to no polling.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from aurous_async import AsyncAurous, InvalidParameterError, NotFoundError
from aurous_async.webhooks import WebhookReceiver


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client for the whole process: one connection pool, one rate governor.
    receiver = WebhookReceiver(os.environ["AUROUS_WEBHOOK_SECRET"])
    async with AsyncAurous() as client:  # AUROUS_API_KEY, AUROUS_BASE_URL
        client.attach_webhooks(receiver)
        app.state.aurous = client
        app.state.webhooks = receiver
        yield


app = FastAPI(lifespan=lifespan)


def aurous(request: Request) -> AsyncAurous:
    client: AsyncAurous = request.app.state.aurous
    return client


Aurous = Annotated[AsyncAurous, Depends(aurous)]


class ImageRequest(BaseModel):
    prompt: str
    size: str | None = None


@app.exception_handler(InvalidParameterError)
async def invalid_parameter(request: Request, exc: InvalidParameterError) -> JSONResponse:
    # Checked before anything is sent: the caller's mistake, not ours.
    return JSONResponse({"detail": exc.message, "param": exc.param}, status_code=422)


@app.post("/images", status_code=201)
async def create_image(body: ImageRequest, client: Aurous) -> dict[str, object]:
    image = await client.images.create(prompt=body.prompt, size=body.size)
    return image.to_dict()


@app.get("/images/{image_id}")
async def get_image(image_id: str, client: Aurous) -> dict[str, object]:
    try:
        image = await client.images.get(image_id)
    except NotFoundError:
        raise HTTPException(404, "no such image") from None
    return image.to_dict()


@app.get("/images/{image_id}/events")
async def follow_image(image_id: str, client: Aurous) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        # One event per status change, the last one terminal. A browser that goes away
        # cancels this generator, and with it the wait (not the generation).
        async for image in client.wait_for(image_id):
            yield f"event: {image.status}\ndata: {image.to_json(indent=None)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/webhooks")
async def webhooks(request: Request) -> Response:
    receiver: WebhookReceiver = request.app.state.webhooks
    # The raw body, byte for byte: the signature covers it.
    answer = await receiver.handle(await request.body(), request.headers)
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))
