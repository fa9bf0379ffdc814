"""``aurous batch --redis``: processes share one rate budget, through a Redis outage too.

Real ``aurous`` subprocesses against one standalone emulator subprocess whose images
bucket is small (20 burst, 10 a second), so pacing decides how many 429s the fleet
draws; the emulator's control routes count them and the generations.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
import anyio.abc
import pytest
from _redis import RedisServer
from cli._support import (
    StandaloneEmulator,
    check_fleet_manifests,
    saved,
    standalone_emulator,
    start_cli,
    until,
    write_prompts,
)

pytestmark = pytest.mark.anyio

#: The images bucket every test here runs against: 20 burst, 600 a minute.
SMALL_IMAGES_BUCKET = "images_post=20/600"
#: How many ``aurous batch`` processes run at once.
PROCESSES = 3
#: Seconds Redis stays SIGSTOPped in the outage test.
OUTAGE = 10.0
#: Job lifecycles of the emulator run this many times faster than real ones.
TIME_SCALE = 20.0


def env_of(emu: StandaloneEmulator) -> dict[str, str]:
    """A process environment pointed at ``emu``, without ``AUROUS_REDIS_URL``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUROUS_")}
    return env | {"AUROUS_BASE_URL": emu.base_url, "AUROUS_API_KEY": emu.api_key}


async def run_batches(
    tmp_path: Path,
    emu: StandaloneEmulator,
    inputs: Sequence[Path],
    extra: Sequence[str] = (),
    during: Callable[[list[Path]], Awaitable[None]] | None = None,
) -> tuple[list[Path], list[int], str]:
    """Run ``aurous batch INPUT --out DIR --yes EXTRA`` for each input at once, ``during``
    alongside: their directories, exit codes and output."""
    dirs = [tmp_path / f"out{i}" for i in range(len(inputs))]
    logs = [tmp_path / f"log{i}" for i in range(len(inputs))]
    processes: list[anyio.abc.Process] = []
    try:
        for prompts, out, log in zip(inputs, dirs, logs, strict=True):
            args = ["batch", str(prompts), "--out", str(out), "--yes", *extra]
            processes.append(await start_cli(args, env_of(emu), log))
        if during is not None:
            await during(dirs)
        with anyio.fail_after(60):
            codes = [await process.wait() for process in processes]
    finally:
        with anyio.CancelScope(shield=True):
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.aclose()
    return dirs, codes, "\n".join(log.read_text() for log in logs)


async def run_fleet(
    tmp_path: Path,
    emu: StandaloneEmulator,
    redis_url: str,
    lines: int,
    during: Callable[[list[Path]], Awaitable[None]] | None = None,
) -> list[Path]:
    """``PROCESSES`` fleet processes on one input of ``lines`` lines; the Redis URL is
    given by ``--redis`` only, so the shared budget comes from the flag."""
    prompts = write_prompts(tmp_path / "prompts.txt", lines)
    extra = ("--redis", redis_url, "--claim-timeout", "30")
    dirs, codes, printed = await run_batches(tmp_path, emu, [prompts] * PROCESSES, extra, during)
    assert codes == [0] * PROCESSES, printed
    return dirs


async def test_fleet_processes_share_the_rate_budget(tmp_path: Path, redis_url: str) -> None:
    """Three processes on a 20-burst bucket, paced by the shared budget: at most one 429."""
    async with standalone_emulator(TIME_SCALE, SMALL_IMAGES_BUCKET) as emu:
        dirs = await run_fleet(tmp_path, emu, redis_url, 60)
        assert await emu.generations() == {"total": 60, "by_status": {"succeeded": 60}}
        assert await emu.rate_limited() <= 1
    check_fleet_manifests(dirs, 60)


async def test_processes_pacing_alone_draw_429s(tmp_path: Path) -> None:
    """The same load from three batches without ``--redis`` (each process paces alone
    with the team's whole budget) draws more 429s than processes: the bounds above bite
    (some lines may even fail, their retries spent on 429s)."""
    inputs = [write_prompts(tmp_path / f"prompts{i}.txt", 60) for i in range(PROCESSES)]
    async with standalone_emulator(TIME_SCALE, SMALL_IMAGES_BUCKET) as emu:
        await run_batches(tmp_path, emu, inputs)
        assert await emu.rate_limited() > PROCESSES


@pytest.mark.slow
async def test_redis_sigstopped_mid_run_completes_with_at_most_one_429_per_process(
    tmp_path: Path, redis_factory: Callable[..., RedisServer]
) -> None:
    """Redis SIGSTOPped for 10 s mid-run (creates go on with local shares), then
    continued (back to the shared budget): every line succeeds, one generation each, and
    the fleet draws at most one 429 per process."""
    server = redis_factory()
    # About 20 s of creates at 10 a second: some before, during and after the outage.
    lines = 200

    async def outage(dirs: list[Path]) -> None:
        await until(lambda: sum(saved(d) for d in dirs) >= 25, within=30)
        server.pause()
        try:
            await anyio.sleep(OUTAGE)
        finally:
            server.resume()

    async with standalone_emulator(TIME_SCALE, SMALL_IMAGES_BUCKET) as emu:
        dirs = await run_fleet(tmp_path, emu, server.url, lines, during=outage)
        assert await emu.generations() == {"total": lines, "by_status": {"succeeded": lines}}
        refused = await emu.rate_limited()
    check_fleet_manifests(dirs, lines)
    assert refused <= PROCESSES, f"{refused} 429s"
