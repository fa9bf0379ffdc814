"""Issue 17: saving a 256 MiB output streams it to disk, in flat memory, at wire speed.

The emulator runs in its own process (pinned to the server core), serving one video
padded to 256 MiB (``EmulatorSettings.video_output_bytes``). Two figures:

- Peak RSS growth: a fresh process (pinned to the client core) opens a client, makes one
  tiny request (imports, pool, connection), reads its RSS, saves the output, and reports
  its peak RSS (``VmHWM``, this process's own) minus that. ``download()``, which returns
  the bytes, is measured the same way for contrast. Target: under 32 MiB for ``save``.
- Throughput: ``client.videos.save`` against raw aiohttp writing the same stream (the same
  signed URL) to a file in this process, with the same durability (fsync, then rename
  into place), in interleaved rounds of one run. Target: the median ratio of times
  (save / raw) within 1.1x. Raw aiohttp without the fsync is shown for reference: it
  says how much of either time is the disk's.

``python -m benchmarks --only downloads [--quick]``, or ``python -m benchmarks.downloads``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from aurous_async import AsyncAurous, Generation
from aurous_async.testing import run_emulator

from ._proc import CLIENT_CORE, pin_to, pinned, server

MIB = 1024 * 1024
SIZE = 256 * MIB
TARGET_RSS = 32 * MIB
TARGET_RATIO = 1.1
#: Seconds a save or download of the benchmark's output may take.
TIMEOUT = 600.0


# -- the server process ------------------------------------------------------------------
async def _serve(size: int) -> None:
    """Serve an emulator with one succeeded video of ``size`` bytes; print how to fetch it."""
    async with run_emulator(video_output_bytes=size) as emu:
        async with AsyncAurous(emu.api_key, base_url=emu.base_url) as client:
            created = await client.videos.create(video_lora_id="seedance-1-pro", duration=2)
            emu.advance(3600)
            done = await client.videos.get(created.id)
            await client.videos.download(done, start=0, end=0)  # builds the padded body
        print(f"listening on {emu.base_url}", flush=True)
        print(emu.api_key, done.id, flush=True)
        await asyncio.Event().wait()


# -- the RSS probe process ---------------------------------------------------------------
def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


async def _probe(mode: str, base_url: str, key: str, video_id: str, path: str) -> None:
    """Print the peak RSS growth of one ``save`` or ``download`` of the video."""
    async with AsyncAurous(key, base_url=base_url, timeout=TIMEOUT) as client:
        video = await client.videos.get(video_id)
        await client.videos.download(video, start=0, end=0)
        before = _status_bytes("VmRSS")
        if mode == "save":
            await client.videos.save(video, path)
        else:
            size = len(await client.videos.download(video))
            assert size == SIZE, size
        print(_status_bytes("VmHWM") - before, flush=True)


def _rss_growth(mode: str, base_url: str, key: str, video_id: str, path: Path) -> int:
    command = [sys.executable, "-m", "benchmarks.downloads", "--probe", mode]
    done = subprocess.run(
        pinned([*command, base_url, key, video_id, str(path)], CLIENT_CORE),
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink(missing_ok=True)
    return int(done.stdout.split()[-1])


# -- throughput, in this process ---------------------------------------------------------
async def _raw_save(
    session: aiohttp.ClientSession, url: str, path: Path, *, durable: bool = True
) -> None:
    """The baseline: aiohttp's stream written to a partial file, fsynced, renamed."""
    partial = path.with_name(f".{path.name}.raw.part")
    async with session.get(url) as response:
        response.raise_for_status()
        # Blocking writes on the loop, as a plain script does: the baseline to beat.
        with open(partial, "wb") as file:  # noqa: ASYNC230
            async for chunk in response.content.iter_any():
                file.write(chunk)
            file.flush()
            if durable:
                os.fsync(file.fileno())
    os.replace(partial, path)


async def _rounds(
    base_url: str, key: str, video_id: str, directory: Path, rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"save": [], "raw": [], "raw_no_fsync": []}
    async with (
        AsyncAurous(key, base_url=base_url, timeout=TIMEOUT) as client,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
    ):
        video: Generation = await client.videos.get(video_id)
        url = video.output_video_url
        assert url is not None
        target = directory / "out.mp4"

        async def save() -> None:
            await client.videos.save(video, target)

        async def raw() -> None:
            await _raw_save(session, url, target)

        async def raw_no_fsync() -> None:
            await _raw_save(session, url, target, durable=False)

        runs = {"save": save, "raw": raw, "raw_no_fsync": raw_no_fsync}
        for name in runs:  # warm-up: the pool's connection, the page cache's pages
            await runs[name]()
            target.unlink()
        for index in range(rounds):
            order = ("save", "raw", "raw_no_fsync")
            order = order if index % 2 == 0 else order[::-1]
            for name in order:
                started = time.perf_counter()
                await runs[name]()
                times[name].append(time.perf_counter() - started)
                assert target.stat().st_size == SIZE
                target.unlink()
    return times


def run(quick: bool = False) -> str:
    """Measure both figures and return the markdown section."""
    pin_to(CLIENT_CORE)
    rounds = 5 if quick else 21
    args = ["-m", "benchmarks.downloads", "--serve", str(SIZE)]
    with tempfile.TemporaryDirectory() as tmp, server(args, banner_lines=2) as srv:
        key, video_id = srv.banner[1].split()
        directory = Path(tmp)
        growth = {
            mode: _rss_growth(mode, srv.url, key, video_id, directory / f"{mode}.mp4")
            for mode in ("save", "download")
        }
        times = asyncio.run(_rounds(srv.url, key, video_id, directory, rounds))
    return _report(growth, times)


def _report(growth: dict[str, int], times: dict[str, list[float]]) -> str:
    ratios = sorted(s / r for s, r in zip(times["save"], times["raw"], strict=True))
    ratio = statistics.median(ratios)
    save_s, raw_s = statistics.median(times["save"]), statistics.median(times["raw"])
    loose_s = statistics.median(times["raw_no_fsync"])
    flat = growth["save"] < TARGET_RSS
    fast = ratio <= TARGET_RATIO
    rows = [
        f"## Streamed saves: a {SIZE // MIB} MiB output to disk (issue 17)",
        "",
        f"Saving one {SIZE // MIB} MiB video output from the emulator (its own process).",
        "",
        "| peak RSS growth of a fresh process | MiB | of the output's size |",
        "|---|---:|---:|",
        f"| `videos.save` (streamed) | {growth['save'] / MIB:.1f} | {growth['save'] / SIZE:.1%} |",
        f"| `videos.download` (bytes, for contrast) | {growth['download'] / MIB:.1f} | "
        f"{growth['download'] / SIZE:.1%} |",
        "",
        f"| throughput ({len(ratios)} interleaved rounds) | median s | MiB/s |",
        "|---|---:|---:|",
        f"| `videos.save` (fsync + rename) | {save_s:.3f} | {SIZE / MIB / save_s:.0f} |",
        f"| raw aiohttp to a file (fsync + rename) | {raw_s:.3f} | {SIZE / MIB / raw_s:.0f} |",
        f"| raw aiohttp to a file, no fsync (reference: the page cache only) | {loose_s:.3f} "
        f"| {SIZE / MIB / loose_s:.0f} |",
        "",
        f"Per-round ratio save / raw: median {ratio:.3f}, range {ratios[0]:.3f}-"
        f"{ratios[-1]:.3f}; ratio of the median times {save_s / raw_s:.3f}.",
        "",
        f"**Verdict: memory {'FLAT' if flat else 'NOT FLAT'}: peak RSS grows by "
        f"{growth['save'] / MIB:.1f} MiB saving {SIZE // MIB} MiB (target under "
        f"{TARGET_RSS // MIB} MiB); throughput {ratio:.3f}x raw aiohttp "
        f"({'within' if fast else 'NOT within'} {TARGET_RATIO}x).**",
    ]
    return "\n".join(rows)


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--serve"]:
        asyncio.run(_serve(int(argv[1])))
    elif argv[:1] == ["--probe"]:
        asyncio.run(_probe(*argv[1:6]))
    else:
        print(run(quick="--quick" in argv))


if __name__ == "__main__":
    _main(sys.argv[1:])
