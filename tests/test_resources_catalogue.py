"""Styles and account reads: loras, video_loras, pricing, balance, team."""

from __future__ import annotations

import pytest
from _sdk_helpers import emulated, settle

from aurous_async import API_VERSION, BillingMode, Lora, NotFoundError, VideoLora

pytestmark = pytest.mark.anyio


async def test_list_loras_is_one_bare_page() -> None:
    """``loras.list`` decodes the bare array in one request, each item with a request id."""
    async with emulated() as (emu, client):
        loras = await client.loras.list().collect()
        assert len(emu.requests) == 1
        assert all(isinstance(lora, Lora) for lora in loras)
        slugs = {lora.slug for lora in loras}
        assert "golden-hour-photography" in slugs
        assert all(lora.request_id == emu.requests[0].request_id for lora in loras)
        pages = [page async for page in client.loras.list().pages()]
        assert len(pages) == 1
        assert pages[0].has_more is False


async def test_get_lora_by_id_or_slug() -> None:
    """A style is found by id or slug; an unknown one is 404."""
    async with emulated() as (_, client):
        by_slug = await client.loras.get("golden-hour-photography")
        by_id = await client.loras.get(by_slug.id)
        assert by_slug == by_id
        assert by_slug.default_steps == 30
        with pytest.raises(NotFoundError):
            await client.loras.get("lora_unknown")


async def test_get_video_lora() -> None:
    """A video model is fetched by slug or id."""
    async with emulated() as (_, client):
        vl = await client.video_loras.get("seedance-1-pro")
        assert isinstance(vl, VideoLora)
        assert vl.default_resolution == "1080p"
        assert (await client.video_loras.get(vl.id)).slug == "seedance-1-pro"


async def test_pricing_of_the_pinned_version() -> None:
    """The rate card names the applied version."""
    async with emulated() as (_, client):
        pricing = await client.pricing.get()
        assert pricing.version == API_VERSION
        assert pricing.image is not None
        assert pricing.image.base == 1
        assert pricing.video is not None
        assert pricing.video.resolution_factor["1080p"] == 2.5
        assert pricing.request_id is not None


async def test_balance_tracks_holds_and_charges() -> None:
    """A create holds credits; once it succeeds they are charged."""
    async with emulated() as (emu, client):
        before = await client.balance.get()
        assert before.billing_mode == BillingMode.METERED
        assert before.credits == before.available_credits + before.held_credits
        img = await client.images.create(prompt="billed")
        held = await client.balance.get()
        assert held.held_credits == 1
        assert held.available_credits == before.available_credits - 1
        settle(emu)
        await client.images.get(img.id)
        after = await client.balance.get()
        assert after.held_credits == 0
        assert after.credits == before.credits - 1


async def test_team() -> None:
    """The team read names the key's team."""
    async with emulated() as (emu, client):
        team = await client.team.get()
        assert team.id == emu.team_id
        assert team.name
        assert team.request_id is not None
