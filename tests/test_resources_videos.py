"""``client.videos`` end to end against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _sdk_helpers import emulated, png, settle

from aurous_async import (
    GenerationStatus,
    GoneError,
    InvalidParameterError,
    MediaType,
    UnprocessableEntityError,
)

pytestmark = pytest.mark.anyio


async def test_estimate_follows_the_rate_card() -> None:
    """A 5 s 480p video costs 0.5 x 1 x 5 = 2.5 credits; nothing is created."""
    async with emulated() as (emu, client):
        est = await client.videos.estimate(
            video_lora_id="seedance-1-pro", resolution="480p", duration=5
        )
        assert est.amount == 2.5
        assert emu.generations() == []
        assert emu.requests[-1].path == "/v1/videos/estimate"


async def test_create_poll_through_images_and_download() -> None:
    """A video is created, polled via ``/v1/images/{id}``, then downloaded whole."""
    async with emulated() as (emu, client):
        vid = await client.videos.create(
            video_lora_id="seedance-1-pro",
            prompt="waves at dusk",
            resolution="720p",
            ratio="16:9",
            duration=4,
            seed=-1,
            camera_fixed=True,
            watermark=False,
        )
        assert vid.id.startswith("vid_")
        assert vid.kind is MediaType.VIDEO
        assert vid.request_id is not None
        settle(emu)
        done = await client.videos.get(vid.id)
        assert done.status == GenerationStatus.SUCCEEDED
        assert emu.requests[-1].path == f"/v1/images/{vid.id}"
        assert done.output_video_url is not None
        whole = await client.videos.download(done)
        by_id = await client.videos.download(done.id)
        assert whole == by_id
        assert len(whole) > 1024


async def test_range_reads_return_partial_content() -> None:
    """``start``/``end`` send a ``Range`` header and return exactly those bytes."""
    async with emulated() as (emu, client):
        vid = await client.videos.create(video_lora_id="seedance-1-lite")
        settle(emu)
        vid = await client.videos.get(vid.id)
        whole = await client.videos.download(vid)
        head = await client.videos.download(vid, start=0, end=99)
        assert head == whole[:100]
        tail = await client.videos.download(vid, start=len(whole) - 10)
        assert tail == whole[-10:]
        middle = await client.videos.download(vid, start=10, end=10)
        assert middle == whole[10:11]
        assert emu.requests[-1].status == 206


async def test_save_writes_the_video(tmp_path: Path) -> None:
    """``save`` writes the downloaded bytes to the path and returns it."""
    async with emulated() as (emu, client):
        vid = await client.videos.create(video_lora_id="seedance-1-pro", duration=2)
        settle(emu)
        written = await client.videos.save(vid.id, tmp_path / "clip.mp4")
        assert await written.read_bytes() == await client.videos.download(vid.id)


async def test_cancel_a_video() -> None:
    """Cancelling a video goes through ``/v1/images/{id}/cancel`` (the images bucket)."""
    async with emulated(time_scale=1e-6) as (emu, client):
        vid = await client.videos.create(video_lora_id="seedance-1-pro")
        cancelled = await client.videos.cancel(vid.id)
        assert cancelled.status == GenerationStatus.CANCELLED
        record = emu.requests[-1]
        assert record.path == f"/v1/images/{vid.id}/cancel"
        assert record.bucket == "images_post"


async def test_frames_from_uploaded_files() -> None:
    """``first_frame_url``/``last_frame_url`` accept ``file_`` ids from ``client.files``."""
    async with emulated() as (_, client):
        first = await client.files.create(png(), purpose="first_frame")
        last = await client.files.create(png(), purpose="last_frame")
        vid = await client.videos.create(
            video_lora_id="seedance-1-pro", first_frame_url=first.id, last_frame_url=last.id
        )
        assert vid.id.startswith("vid_")


async def test_output_errors() -> None:
    """A failed video has no output (422); an old one is gone (410)."""
    async with emulated() as (emu, client):
        emu.force_next_outcome("failed")
        failed = await client.videos.create(video_lora_id="seedance-1-pro")
        settle(emu)
        with pytest.raises(UnprocessableEntityError):
            await client.videos.download(failed.id)
        ok = await client.videos.create(video_lora_id="seedance-1-pro")
        settle(emu)
        emu.advance(emu.settings.output_retention + 1)
        with pytest.raises(GoneError):
            await client.videos.download(ok.id, start=0, end=9)


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"video_lora_id": ""}, "video_lora_id"),
    ({"video_lora_id": "v", "duration": 1}, "duration"),
    ({"video_lora_id": "v", "duration": 13}, "duration"),
    ({"video_lora_id": "v", "resolution": "4k"}, "resolution"),
    ({"video_lora_id": "v", "ratio": "2:1"}, "ratio"),
    ({"video_lora_id": "v", "first_frame_url": "http://example.com/a.png"}, "first_frame_url"),
    ({"video_lora_id": "v", "last_frame_url": "https://x/" + "a" * 2048}, "last_frame_url"),
    ({"video_lora_id": "v", "seed": -2}, "seed"),
    ({"video_lora_id": "v", "prompt": ""}, "prompt"),
]


@pytest.mark.parametrize(("kwargs", "param"), INVALID)
async def test_invalid_input_is_refused_before_sending(kwargs: dict[str, Any], param: str) -> None:
    """Documented video constraints are checked offline, for create and estimate."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.videos.create(**kwargs)
        assert info.value.param == param
        with pytest.raises(InvalidParameterError):
            await client.videos.estimate(**kwargs)
        assert emu.requests == []


@pytest.mark.parametrize(
    ("start", "end", "param"), [(-1, None, "start"), (10, 5, "end"), (None, -3, "end")]
)
async def test_invalid_ranges_are_refused(start: int | None, end: int | None, param: str) -> None:
    """A range must satisfy ``0 <= start <= end``."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.videos.download("vid_1", start=start, end=end)
        assert info.value.param == param
        assert emu.requests == []
