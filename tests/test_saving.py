"""Streamed saves and chunk iterators of outputs, end to end against the emulator."""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest
from _sdk_helpers import emulated, settle

from aurous_async import (
    APIConnectionError,
    AsyncAurous,
    Limits,
    NotFoundError,
    OutputStream,
    RetryPolicy,
)
from aurous_async._saving import partial_path
from aurous_async.testing import Emulator, Fault

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
NO_RETRY = RetryPolicy(max_attempts=1)


async def _video(emu: Emulator, client: AsyncAurous) -> str:
    created = await client.videos.create(video_lora_id="seedance-1-pro", duration=2)
    settle(emu)
    return created.id


def _emulated(**options: Any) -> AbstractAsyncContextManager[tuple[Emulator, AsyncAurous]]:
    # Real time on the client's clock: a save's retry deadline is then the call's
    # timeout in real seconds (on the usual 1000x clock, 60 s would be 60 ms).
    return emulated(rate_scale=1.0, **options)


async def _joined(stream: OutputStream) -> bytes:
    async with stream as chunks:
        return b"".join([chunk async for chunk in chunks])


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(".clip.mp4.*.part"))


def _output_statuses(emu: Emulator, video_id: str) -> list[int]:
    path = f"/v1/videos/{video_id}/output"
    return [record.status for record in emu.requests if record.path == path]


async def test_save_writes_the_whole_output_and_no_partial(tmp_path: Path) -> None:
    """A save writes exactly the output's bytes to the path and leaves no partial file."""
    async with _emulated(video_output_bytes=3 * MIB + 17) as (emu, client):
        video = await _video(emu, client)
        written = await client.videos.save(video, tmp_path / "clip.mp4")
        whole = await client.videos.download(video)
        assert isinstance(whole, bytes)
        assert len(whole) == 3 * MIB + 17
        assert written == anyio.Path(tmp_path / "clip.mp4")
        assert (tmp_path / "clip.mp4").read_bytes() == whole
        assert _names(tmp_path) == ["clip.mp4"]


async def test_images_save_streams_to_the_path(tmp_path: Path) -> None:
    """``images.save`` writes output ``index`` whole, as ``download`` returns it."""
    async with _emulated() as (emu, client):
        image = await client.images.create(prompt="a lighthouse", count=2)
        settle(emu)
        done = await client.images.get(image.id)
        await client.images.save(done, tmp_path / "second.png", index=1)
        assert (tmp_path / "second.png").read_bytes() == await client.images.download(done, index=1)
        assert _names(tmp_path) == ["second.png"]


async def test_a_save_cut_off_leaves_no_target_and_the_next_resumes(tmp_path: Path) -> None:
    """A body cut mid-way leaves only a partial; the next save asks for the rest (206)."""
    async with _emulated(video_output_bytes=8 * MIB, retry=NO_RETRY) as (emu, client):
        video = await _video(emu, client)
        target = tmp_path / "clip.mp4"
        emu.inject(Fault("truncated_body", match=f"GET /v1/videos/{video}/output"))
        with pytest.raises(APIConnectionError):
            await client.videos.save(video, target)
        assert not target.exists()
        [partial] = _partials(tmp_path)
        kept = partial.stat().st_size
        assert 0 < kept < 8 * MIB
        await client.videos.save(video, target)
        assert _output_statuses(emu, video)[-1] == 206
        assert target.read_bytes() == await client.videos.download(video)
        assert _partials(tmp_path) == []


async def test_a_cancelled_save_leaves_no_target_and_the_next_resumes(tmp_path: Path) -> None:
    """A save cancelled mid-stream keeps what it wrote, and the next save appends the rest."""
    async with _emulated(video_output_bytes=64 * MIB) as (emu, client):
        video = await _video(emu, client)
        target = tmp_path / "clip.mp4"
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.videos.save, video, target)
                # The file system has no event to wait on: poll until bytes are on disk.
                while not any(p.stat().st_size for p in _partials(tmp_path)):  # noqa: ASYNC110
                    await anyio.sleep(0.001)
                scope.cancel()
        assert not target.exists()
        [partial] = _partials(tmp_path)
        assert 0 < partial.stat().st_size < 64 * MIB
        await client.videos.save(video, target)
        assert _output_statuses(emu, video) == [200, 206]
        assert target.read_bytes() == await client.videos.download(video)


async def test_a_retry_after_a_cut_never_appends_twice(tmp_path: Path) -> None:
    """Within one save, the retry after a cut body resumes at the bytes on disk, exactly."""
    async with _emulated(video_output_bytes=8 * MIB) as (emu, client):
        video = await _video(emu, client)
        emu.inject(Fault("truncated_body", match=f"GET /v1/videos/{video}/output", times=2))
        await client.videos.save(video, tmp_path / "clip.mp4")
        assert _output_statuses(emu, video) == [200, 206, 206]
        assert (tmp_path / "clip.mp4").read_bytes() == await client.videos.download(video)


async def test_a_partial_that_is_not_a_prefix_is_started_over(tmp_path: Path) -> None:
    """A partial longer than the output (416) is discarded and the output saved whole."""
    async with _emulated(video_output_bytes=2 * MIB) as (emu, client):
        video = await _video(emu, client)
        target = tmp_path / "clip.mp4"
        await client.videos.save(video, target)
        [name] = _names(tmp_path)
        whole = target.read_bytes()
        target.unlink()
        emu.inject(Fault("truncated_body", match=f"GET /v1/videos/{video}/output"))
        async with AsyncAurous(emu.api_key, base_url=emu.base_url, retry=NO_RETRY) as once:
            with pytest.raises(APIConnectionError):
                await once.videos.save(video, target)
        [partial] = _partials(tmp_path)
        partial.write_bytes(b"x" * (3 * MIB))
        await client.videos.save(video, target)
        assert _output_statuses(emu, video)[-2:] == [416, 200]
        assert target.read_bytes() == whole
        assert _names(tmp_path) == [name]


async def test_a_partial_holding_the_whole_output_is_renamed_into_place(tmp_path: Path) -> None:
    """A partial as long as the output (a save killed before its rename) is kept (416)."""
    async with _emulated(video_output_bytes=2 * MIB) as (emu, client):
        video = await _video(emu, client)
        whole = await client.videos.download(video)
        target = tmp_path / "clip.mp4"
        partial_path(target, f"/v1/videos/{video}/output").write_bytes(whole)
        await client.videos.save(video, target)
        assert _output_statuses(emu, video)[-1] == 416
        assert target.read_bytes() == whole
        assert _names(tmp_path) == ["clip.mp4"]


async def test_a_gone_output_removes_the_partial(tmp_path: Path) -> None:
    """An output the server will not serve (404) leaves neither target nor partial."""
    async with _emulated() as (_emu, client):
        with pytest.raises(NotFoundError):
            await client.videos.save("vid_doesnotexist", tmp_path / "clip.mp4")
        assert _names(tmp_path) == []


async def test_a_save_into_a_missing_directory_raises_before_any_request(tmp_path: Path) -> None:
    """The partial cannot be made: ``FileNotFoundError``, and no output request is sent."""
    async with _emulated() as (emu, client):
        video = await _video(emu, client)
        with pytest.raises(FileNotFoundError):
            await client.videos.save(video, tmp_path / "missing" / "clip.mp4")
        assert _output_statuses(emu, video) == []


async def test_iter_bytes_yields_the_whole_output_in_chunks() -> None:
    """``iter_bytes`` hands over the output in several chunks that join to the whole."""
    async with _emulated(video_output_bytes=4 * MIB) as (emu, client):
        video = await _video(emu, client)
        async with client.videos.iter_bytes(video) as chunks:
            received = [chunk async for chunk in chunks]
        assert len(received) > 1
        assert max(map(len, received)) < 4 * MIB
        assert b"".join(received) == await client.videos.download(video)


async def test_iter_bytes_resumes_after_a_cut_without_repeating_bytes() -> None:
    """A body cut mid-stream is resumed with ``Range``; no byte is handed over twice."""
    async with _emulated(video_output_bytes=4 * MIB) as (emu, client):
        video = await _video(emu, client)
        emu.inject(Fault("truncated_body", match=f"GET /v1/videos/{video}/output"))
        received = await _joined(client.videos.iter_bytes(video))
        assert _output_statuses(emu, video) == [200, 206]
        assert received == await client.videos.download(video)


async def test_iter_bytes_raises_the_answer_s_error_while_iterating() -> None:
    """An output that is not served (404) raises its typed error from the iteration."""
    async with _emulated() as (_emu, client):
        with pytest.raises(NotFoundError):
            await _joined(client.images.iter_bytes("img_doesnotexist"))


async def test_iter_bytes_left_early_releases_its_connection() -> None:
    """Leaving the block after one chunk frees the only pooled connection for the next call."""
    options = {"limits": Limits(max_connections=1)}
    async with _emulated(video_output_bytes=16 * MIB, client_options=options) as (emu, client):
        video = await _video(emu, client)
        async with client.videos.iter_bytes(video) as chunks:
            async for first in chunks:
                assert first
                break
        with anyio.fail_after(10):
            head = await client.videos.download(video, start=0, end=7)
        assert len(head) == 8


_MEASURE = """
import asyncio, sys
from aurous_async import AsyncAurous

def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

async def main(base_url, key, video, path):
    async with AsyncAurous(key, base_url=base_url) as client:
        await client.videos.download(video, start=0, end=0)  # imports, pool, connection
        before = status_bytes("VmRSS")
        await client.videos.save(video, path)
        # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's).
        print(status_bytes("VmHWM") - before)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
async def test_save_memory_stays_flat(tmp_path: Path) -> None:
    """Saving a 64 MiB output grows the saving process's peak RSS by far less than that."""
    async with _emulated(video_output_bytes=64 * MIB) as (emu, client):
        video = await _video(emu, client)
        target = tmp_path / "clip.mp4"
        args = [emu.base_url, emu.api_key, video, str(target)]
        done = await anyio.run_process([sys.executable, "-c", _MEASURE, *args])
        growth = int(done.stdout)
        assert target.stat().st_size == 64 * MIB
        assert growth < 16 * MIB, f"peak RSS grew by {growth / MIB:.1f} MiB"
