"""``client.images`` end to end against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _sdk_helpers import emulated, settle

from aurous_async import (
    BadRequestError,
    Estimate,
    Generation,
    GenerationStatus,
    GoneError,
    InsufficientCreditsError,
    InvalidParameterError,
    LoraWeight,
    MediaType,
    NotFoundError,
    UnprocessableEntityError,
)

pytestmark = pytest.mark.anyio


async def test_estimate_prices_without_creating() -> None:
    """An estimate returns the price and its request id, and creates nothing."""
    async with emulated() as (emu, client):
        est = await client.images.estimate(prompt="a lighthouse", size="2k_1_1", count=2)
        assert isinstance(est, Estimate)
        assert est.amount == 2.0
        assert est.request_id is not None
        assert est.request_id.startswith("req_")
        assert emu.generations() == []
        assert emu.requests[-1].bucket == "estimate_post"


async def test_create_get_and_outputs() -> None:
    """A create answers queued with its request id; after the job runs, get shows outputs."""
    async with emulated() as (emu, client):
        img = await client.images.create(
            prompt="a lighthouse", lora_id="golden-hour-photography", size="2k_16_9"
        )
        assert img.status in (GenerationStatus.QUEUED, GenerationStatus.PENDING)
        assert img.id.startswith("img_")
        assert img.request_id == img.creation_request_id
        assert img.kind is MediaType.IMAGE
        assert [lora.name for lora in img.loras] == ["Golden Hour Photography"]
        settle(emu)
        done = await client.images.get(img.id)
        assert done.status == GenerationStatus.SUCCEEDED
        assert done.is_terminal
        assert len(done.output_urls) == 1
        assert done.completed_at is not None
        assert done.request_id != img.request_id


async def test_create_with_a_lora_stack_and_explicit_size() -> None:
    """``loras`` sends the multi-LoRA stack; width and height travel together."""
    async with emulated() as (_, client):
        img = await client.images.create(
            prompt="a cat",
            loras=[LoraWeight("golden-hour-photography", 0.7), LoraWeight("watercolor-dreams")],
            width=1024,
            height=1536,
            count=2,
            seed=7,
            steps=20,
            guidance_scale=7.5,
            negative_prompt="blurry",
        )
        assert len(img.loras) == 2
        assert (img.width, img.height) == (1024, 1536)
        assert img.image_count == 2
        assert img.seed == 7


async def test_list_pages_transparently() -> None:
    """Iterating ``list`` walks every page, newest first; ``pages`` and ``collect`` agree."""
    async with emulated() as (_, client):
        created = [await client.images.create(prompt=f"p{i}") for i in range(5)]
        newest_first = [g.id for g in reversed(created)]
        seen = [g.id async for g in client.images.list(limit=2)]
        assert seen == newest_first
        pages = [page async for page in client.images.list(limit=2).pages()]
        assert [len(p.data) for p in pages] == [2, 2, 1]
        assert [p.has_more for p in pages] == [True, True, False]
        assert all(p.request_id for p in pages)
        first3 = await client.images.list(limit=2).collect(max_items=3)
        assert [g.id for g in first3] == newest_first[:3]
        assert await client.images.list().collect(max_items=0) == []
        older = [g.id async for g in client.images.list(starting_after=newest_first[1])]
        assert older == newest_first[2:]
        newer = [g.id async for g in client.images.list(limit=1, ending_before=newest_first[3])]
        assert sorted(newer) == sorted(newest_first[:3])


async def test_list_is_lazy() -> None:
    """Building a pager sends nothing; only iteration does."""
    async with emulated() as (emu, client):
        pager = client.images.list(limit=10)
        assert emu.requests == []
        assert [g async for g in pager] == []
        assert len(emu.requests) == 1


async def test_cancel_is_idempotent_and_refused_when_terminal() -> None:
    """Cancel ends a queued job; again is a no-op; a finished one gives 400."""
    async with emulated(time_scale=1e-6) as (emu, client):
        img = await client.images.create(prompt="to cancel")
        cancelled = await client.images.cancel(img.id)
        assert cancelled.status == GenerationStatus.CANCELLED
        again = await client.images.cancel(img.id)
        assert again.status == GenerationStatus.CANCELLED
        assert emu.requests[-1].bucket == "images_post"
        done = await client.images.create(prompt="finished")
        settle(emu)
        with pytest.raises(BadRequestError) as info:
            await client.images.cancel(done.id)
        assert info.value.code == "generation_not_cancellable"
        assert info.value.status == 400


async def test_download_and_save(tmp_path: Path) -> None:
    """Outputs download from the signed URL or by id, and save writes the same bytes."""
    async with emulated() as (emu, client):
        img = await client.images.create(prompt="to download")
        settle(emu)
        img = await client.images.get(img.id)
        by_url = await client.images.download(img)
        by_id = await client.images.download(img.id, index=0)
        assert by_url == by_id
        assert by_url.startswith(b"\x89PNG")
        written = await client.images.save(img, tmp_path / "out.png")
        assert await written.read_bytes() == by_url
        output_requests = [r for r in emu.requests if "/output/" in r.path]
        assert all(r.bucket is None for r in output_requests)


async def test_output_errors_map_to_their_classes() -> None:
    """A terminal job without output gives 422; an expired output gives 410."""
    async with emulated() as (emu, client):
        emu.force_next_outcome("failed", error_message="provider error")
        failed = await client.images.create(prompt="will fail")
        settle(emu)
        failed = await client.images.get(failed.id)
        assert failed.status == GenerationStatus.FAILED
        assert failed.error_message == "provider error"
        with pytest.raises(UnprocessableEntityError) as info:
            await client.images.download(failed.id)
        assert info.value.code == "output_not_available"
        ok = await client.images.create(prompt="will expire")
        settle(emu)
        ok = await client.images.get(ok.id)
        emu.advance(emu.settings.output_retention + 60)
        with pytest.raises(GoneError) as gone:
            await client.images.download(ok)
        assert gone.value.code == "output_expired"


async def test_server_side_refusals() -> None:
    """A blocked prompt gives 400 ``prompt_blocked``; a low balance gives 402."""
    async with emulated() as (emu, client):
        with pytest.raises(BadRequestError) as blocked:
            await client.images.create(prompt="a aurous-blocked-test-word here")
        assert blocked.value.code == "prompt_blocked"
        emu.set_credits(emu.team_id, 0.5)
        with pytest.raises(InsufficientCreditsError) as low:
            await client.images.create(prompt="too expensive")
        assert low.value.code == "balance_too_low"
        assert low.value.status == 402
        assert low.value.idempotency_key is not None


async def test_caller_idempotency_key_replays_the_original() -> None:
    """The same caller key twice returns the original generation, created once."""
    async with emulated() as (emu, client):
        first = await client.images.create(prompt="once", idempotency_key="order-42")
        second = await client.images.create(prompt="once", idempotency_key="order-42")
        assert first.id == second.id
        assert len(emu.generations()) == 1


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * 4001}, "prompt"),
    ({"prompt": "x", "negative_prompt": ""}, "negative_prompt"),
    ({"prompt": "x", "size": "2k_5_4"}, "size"),
    ({"prompt": "x", "size": "2k_1_1", "width": 1024, "height": 1024}, "size"),
    ({"prompt": "x", "width": 1024}, "height"),
    ({"prompt": "x", "width": 512, "height": 1024}, "width"),
    ({"prompt": "x", "width": 1024, "height": 5000}, "height"),
    ({"prompt": "x", "lora_id": "a", "loras": [LoraWeight("b")]}, "lora_id"),
    ({"prompt": "x", "loras": []}, "loras"),
    ({"prompt": "x", "loras": [LoraWeight("b")] * 5}, "loras"),
    ({"prompt": "x", "loras": [LoraWeight("b", 2.5)]}, "loras.weight"),
    ({"prompt": "x", "character_id": "char_1", "reference_image_urls": ["file_1"]}, "character_id"),
    ({"prompt": "x", "reference_image_urls": []}, "reference_image_urls"),
    ({"prompt": "x", "reference_image_urls": ["file_1"] * 7}, "reference_image_urls"),
    ({"prompt": "x", "reference_image_urls": ["ftp://x/y.png"]}, "reference_image_urls"),
    ({"prompt": "x", "count": 0}, "count"),
    ({"prompt": "x", "count": 5}, "count"),
    ({"prompt": "x", "steps": 101}, "steps"),
    ({"prompt": "x", "guidance_scale": 0.0}, "guidance_scale"),
    ({"prompt": "x", "webhook_url": "not a url"}, "webhook_url"),
    ({"prompt": "x", "idempotency_key": ""}, "idempotency_key"),
    ({"prompt": "x", "idempotency_key": "k" * 257}, "idempotency_key"),
    ({"prompt": "x", "idempotency_key": "line\nbreak"}, "idempotency_key"),
]


@pytest.mark.parametrize(("kwargs", "param"), INVALID)
async def test_invalid_input_is_refused_before_sending(kwargs: dict[str, Any], param: str) -> None:
    """Documented constraints raise ``InvalidParameterError`` naming the parameter, offline."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.images.create(**kwargs)
        assert info.value.param == param
        estimate_kwargs = {k: v for k, v in kwargs.items() if k != "idempotency_key"}
        if estimate_kwargs != kwargs:
            return
        with pytest.raises(InvalidParameterError):
            await client.images.estimate(**estimate_kwargs)
        assert emu.requests == []
        assert client.rate_limits == {}


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda c: c.images.list(limit=0), "limit"),
        (lambda c: c.images.list(limit=101), "limit"),
        (lambda c: c.images.list(starting_after="a", ending_before="b"), "starting_after"),
    ],
)
async def test_invalid_list_arguments_fail_at_call_time(call: Any, param: str) -> None:
    """A bad page size or cursor pair is refused when ``list`` is called."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            call(client)
        assert info.value.param == param
        assert emu.requests == []


async def test_invalid_ids_and_indexes_are_refused() -> None:
    """An empty id or a negative output index never reaches the server."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError):
            await client.images.get("")
        with pytest.raises(InvalidParameterError) as info:
            await client.images.download("img_1", index=-1)
        assert info.value.param == "index"
        assert emu.requests == []


async def test_ids_are_quoted_into_the_path() -> None:
    """An id with URL-special characters stays one path segment: the server sees the id."""
    async with emulated() as (emu, client):
        for odd in ("../balance", "a b?c#d"):
            with pytest.raises(NotFoundError):
                await client.images.get(odd)
            assert emu.requests[-1].path == f"/v1/images/{odd}"


async def test_generation_model_is_returned() -> None:
    """Every create, get and cancel returns a ``Generation``."""
    async with emulated() as (_, client):
        img = await client.images.create(prompt="typed")
        assert isinstance(img, Generation)
        assert isinstance(await client.images.get(img.id), Generation)
