"""Every one of the 35 endpoints of contract §1 is reachable through the public client."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from _sdk_helpers import emulated, png, settle

pytestmark = pytest.mark.anyio

_ID = r"[^/]+"
#: Contract §1, in its order.
ENDPOINTS: list[tuple[str, str]] = [
    ("GET", "/v1/balance"),
    ("GET", "/v1/team"),
    ("GET", "/v1/pricing"),
    ("GET", "/v1/usage"),
    ("GET", "/v1/usage/events"),
    ("GET", "/v1/loras"),
    ("GET", f"/v1/loras/{_ID}"),
    ("GET", f"/v1/video_loras/{_ID}"),
    ("POST", "/v1/images"),
    ("POST", "/v1/images/estimate"),
    ("GET", "/v1/images"),
    ("GET", f"/v1/images/{_ID}"),
    ("POST", f"/v1/images/{_ID}/cancel"),
    ("GET", f"/v1/images/{_ID}/output/{_ID}"),
    ("POST", "/v1/videos"),
    ("POST", "/v1/videos/estimate"),
    ("GET", f"/v1/videos/{_ID}/output"),
    ("POST", "/v1/files"),
    ("GET", f"/v1/files/{_ID}"),
    ("DELETE", f"/v1/files/{_ID}"),
    ("POST", "/v1/characters/uploads/init"),
    ("POST", "/v1/characters/uploads/classify"),
    ("POST", "/v1/characters"),
    ("GET", "/v1/characters"),
    ("GET", f"/v1/characters/{_ID}"),
    ("PATCH", f"/v1/characters/{_ID}"),
    ("DELETE", f"/v1/characters/{_ID}"),
    ("POST", f"/v1/characters/{_ID}/save"),
    ("POST", f"/v1/characters/{_ID}/refs/regenerate"),
    ("POST", f"/v1/characters/{_ID}/resynthesize"),
    ("POST", "/v1/webhook_endpoints"),
    ("GET", f"/v1/webhook_endpoints/{_ID}"),
    ("POST", f"/v1/webhook_endpoints/{_ID}/rotate_secret"),
    ("POST", f"/v1/webhook_endpoints/{_ID}/test"),
    ("DELETE", f"/v1/webhook_endpoints/{_ID}"),
]


async def test_every_contract_endpoint_is_reached() -> None:
    """One session through the public methods hits all 35 endpoints with a 2xx."""
    assert len(ENDPOINTS) == 35
    # Jobs move only when settle() jumps the clock, so the cancel below cannot lose a race.
    async with emulated(time_scale=1e-6) as (emu, client):
        await client.balance.get()
        await client.team.get()
        await client.pricing.get()
        since = datetime.fromtimestamp(emu.clock.time(), tz=timezone.utc) - timedelta(days=1)
        await client.usage.list(start_time=since).collect()
        await client.usage.events.list().collect()
        lora = (await client.loras.list().collect())[0]
        await client.loras.get(lora.id)
        await client.video_loras.get("seedance-1-pro")
        await client.images.estimate(prompt="x")
        img = await client.images.create(prompt="x")
        await client.images.list().collect()
        await client.images.cancel((await client.images.create(prompt="y")).id)
        await client.videos.estimate(video_lora_id="seedance-1-pro")
        vid = await client.videos.create(video_lora_id="seedance-1-pro")
        settle(emu)
        await client.images.download(await client.images.get(img.id))
        await client.videos.download(await client.videos.get(vid.id))
        f = await client.files.create(png(), purpose="reference")
        await client.files.get(f.id)
        await client.files.delete(f.id)
        ticket = await client.characters.upload(png(), filename="front.png")
        await client.characters.uploads.classify(ticket.upload_id)
        char = await client.characters.create(name="C", upload_ids=[ticket.upload_id])
        await client.characters.list().collect()
        await client.characters.get(char.id)
        await client.characters.update(char.id, name="C2")
        await client.characters.save(char.id)
        await client.characters.refs.regenerate(char.id, pose="front")
        settle(emu)
        await client.characters.resynthesize(char.id)
        await client.characters.delete(char.id)
        ep = await client.webhook_endpoints.create(url="http://127.0.0.1:9/h", events=["*"])
        await client.webhook_endpoints.get(ep.id)
        await client.webhook_endpoints.rotate_secret(ep.id)
        await client.webhook_endpoints.test(ep.id, event_type="image.completed")
        await client.webhook_endpoints.delete(ep.id)
        hits = [(r.method, r.path) for r in emu.requests if 200 <= r.status < 300]
    missing = [
        (method, pattern)
        for method, pattern in ENDPOINTS
        if not any(m == method and re.fullmatch(pattern, p) for m, p in hits)
    ]
    assert missing == []
