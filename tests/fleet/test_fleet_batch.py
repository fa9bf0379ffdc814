"""``aurous batch --redis``: several processes share one batch through a real redis-server.

The processes are real ``aurous`` subprocesses against one standalone emulator
subprocess; the emulator's control routes count the generations it made.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest
import redis
from _redis import RedisServer
from cli._support import (
    StandaloneEmulator,
    check_fleet_manifests,
    manifest,
    saved,
    standalone_emulator,
    start_cli,
    until,
    write_prompts,
)

from aurous_async._cli import main
from aurous_async._cli._fleet_batch import content_batch_id
from aurous_async._cli._inputs import read_requests
from aurous_async._cli._target import TargetOptions, open_target
from aurous_async._config import ENV_REDIS_URL
from aurous_async._errors import FleetUnavailableError
from aurous_async._fleet._namespace import Namespace
from aurous_async._fleet._redis_batch import RedisBatch
from aurous_async._fleet._redis_link import RedisLink
from aurous_async.testing import BucketSpec, run_emulator

pytestmark = pytest.mark.anyio


async def start_batch(
    prompts: Path, out: Path, emu: StandaloneEmulator, redis_url: str, log: Path
) -> anyio.abc.Process:
    """Start ``aurous batch PROMPTS --out OUT --redis URL --claim-timeout 2`` (subprocess)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUROUS_")}
    env |= {"AUROUS_BASE_URL": emu.base_url, "AUROUS_API_KEY": emu.api_key}
    env["AUROUS_REDIS_URL"] = redis_url
    args = ["batch", str(prompts), "--out", str(out), "--yes", "--claim-timeout", "2"]
    return await start_cli(args, env, log)


def pending_of(redis_url: str, pid: int) -> int:
    """Lines the consumer of process ``pid`` still holds in the (only) batch stream."""
    client = redis.Redis.from_url(redis_url)
    try:
        (stream,) = client.keys("*:batch:*:stream")
        summary = client.xpending(stream, "workers")
        return sum(c["pending"] for c in summary["consumers"] if f":{pid}:" in c["name"].decode())
    finally:
        client.close()


@pytest.mark.slow
async def test_four_processes_one_killed_make_every_generation_exactly_once(
    tmp_path: Path, redis_url: str
) -> None:
    """Four processes on 400 lines, one SIGKILLed and one stalled mid-run: 400 generations,
    all succeeded."""
    prompts = write_prompts(tmp_path / "prompts.txt", 400)
    dirs = [tmp_path / f"out{i}" for i in range(4)]
    async with standalone_emulator(time_scale=20) as emu:
        processes = [
            await start_batch(prompts, d, emu, redis_url, tmp_path / f"log{i}")
            for i, d in enumerate(dirs)
        ]
        try:
            victim = processes[0]
            await until(lambda: saved(dirs[0]) >= 10, within=60)
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            assert pending_of(redis_url, victim.pid) > 0  # it died holding lines
            # A live process stalled past its claim loses its lines and cannot commit them.
            processes[1].send_signal(signal.SIGSTOP)
            await anyio.sleep(3.5)
            processes[1].send_signal(signal.SIGCONT)
            with anyio.fail_after(90):
                codes = [await p.wait() for p in processes[1:]]
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        logs = "\n".join((tmp_path / f"log{i}").read_text() for i in range(1, 4))
        assert codes == [0, 0, 0], logs
        assert "another process took it over" in (tmp_path / "log1").read_text()
        assert logs.count("400/400 finished (400 succeeded)") == 3  # the fleet-wide view
        assert await emu.generations() == {"total": 400, "by_status": {"succeeded": 400}}
    check_fleet_manifests(dirs[1:], 400)
    assert pending_of(redis_url, victim.pid) == 0


async def test_redis_restarted_empty_mid_run_completes_without_a_duplicate(
    tmp_path: Path, redis_factory: Callable[..., RedisServer]
) -> None:
    """Redis loses the batch mid-run: re-seeded, and every line created once."""
    server = redis_factory()
    prompts = write_prompts(tmp_path / "prompts.txt", 60)
    dirs = [tmp_path / "a", tmp_path / "b"]
    async with standalone_emulator(time_scale=20) as emu:
        processes = [
            await start_batch(prompts, d, emu, server.url, tmp_path / f"log{i}")
            for i, d in enumerate(dirs)
        ]
        try:
            await until(lambda: saved(dirs[0]) + saved(dirs[1]) >= 15, within=60)
            server.restart()
            with anyio.fail_after(90):
                codes = [await p.wait() for p in processes]
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        logs = "\n".join((tmp_path / f"log{i}").read_text() for i in range(2))
        assert codes == [0, 0], logs
        assert "seeding it again" in logs
        assert await emu.generations() == {"total": 60, "by_status": {"succeeded": 60}}
    check_fleet_manifests(dirs, 60)


def run_batch(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    """``aurous batch`` of a 3-line file in this process (API on a dead port): exit code
    and stderr."""
    prompts = write_prompts(tmp_path / "prompts.txt", 3)
    code = main(
        [
            *("batch", str(prompts), "--out", str(tmp_path / "out"), "--yes"),
            *("--api-key", "k", "--base-url", "http://127.0.0.1:1", "--redis", redis_url),
            *extra,
        ]
    )
    return code, capsys.readouterr().err


def test_a_malformed_redis_url_is_a_usage_error_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed URL exits 2 naming it (password redacted); no API call, no directory."""
    code, err = run_batch(tmp_path, "redis://:hunter2@host:notaport/0", capsys)
    assert code == 2
    assert "malformed redis_url" in err
    assert "hunter2" not in err
    assert not (tmp_path / "out").exists()


def test_unreachable_redis_at_start_exits_3_naming_the_url_without_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody listening on the Redis port: exit 3, one line naming the redacted URL."""
    port = RedisServer().port  # a free port nobody listens on
    code, err = run_batch(tmp_path, f"redis://:hunter2@127.0.0.1:{port}/0", capsys)
    assert code == 3
    assert f"redis://:***@127.0.0.1:{port}/0 is unreachable" in err
    assert "hunter2" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--force-new", "--retry-failed"])
def test_flags_that_change_keys_are_refused_with_redis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    """``--force-new`` and ``--retry-failed`` would give processes different keys: exit 2."""
    code, err = run_batch(tmp_path, "redis://127.0.0.1:1/0", capsys, flag)
    assert code == 2
    assert f"{flag} cannot be combined with --redis" in err


async def test_a_run_joining_a_complete_batch_writes_its_manifest_and_creates_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    """The same command after the batch is done: exit 0, the full manifest, no create."""
    prompts = write_prompts(tmp_path / "prompts.txt", 12)
    buckets = ("get", "images_post", "estimate_post", "default")
    roomy = {name: BucketSpec(10_000, 600_000) for name in buckets}
    async with run_emulator(time_scale=200.0, buckets=roomy) as emu:

        def batch(out: Path) -> int:
            args = ["batch", str(prompts), "--out", str(out), "--yes", "--redis", redis_url]
            return main([*args, "--api-key", emu.api_key, "--base-url", emu.base_url])

        assert await anyio.to_thread.run_sync(batch, tmp_path / "first") == 0
        assert len(emu.state.generations.rows) == 12
        assert await anyio.to_thread.run_sync(batch, tmp_path / "second") == 0
        assert len(emu.state.generations.rows) == 12
    first, second = manifest(tmp_path / "first"), manifest(tmp_path / "second")
    assert first == second
    assert {r["worker_out"] for r in second} == {str((tmp_path / "first").resolve())}
    assert not list((tmp_path / "second").glob("0*_*"))


async def test_a_line_every_holder_stopped_on_is_closed_not_handed_out_forever(
    tmp_path: Path, redis_url: str
) -> None:
    """A line three processes took and stopped on (a line that crashes its process):
    the next process closes it with an error instead of running it, the other lines
    succeed, and nothing is created for it."""
    prompts = write_prompts(tmp_path / "prompts.txt", 3)
    requests = read_requests(prompts)
    poison = requests[0].line
    async with run_emulator(time_scale=200.0) as emu:
        namespace = Namespace.for_team(emu.base_url, emu.api_key)
        for holder in range(3):
            dead = RedisBatch(
                RedisLink(redis_url),
                namespace,
                content_batch_id(requests),
                consumer=f"crashed-{holder}",
                claim_timeout=0.2,
            )
            try:
                await dead.seed([request.line for request in requests])
                claimed = await dead.claim(1)
                assert claimed is not None
                assert [(c.line, c.deliveries) for c in claimed[1]] == [(poison, holder + 1)]
            finally:
                await dead.aclose()
            await anyio.sleep(0.3 if holder < 2 else 1.2)  # it stops renewing: it died

        def batch() -> int:
            args = ["batch", str(prompts), "--out", str(tmp_path / "out"), "--yes"]
            args += ["--redis", redis_url, "--claim-timeout", "1", "--max-deliveries", "3"]
            return main([*args, "--api-key", emu.api_key, "--base-url", emu.base_url])

        assert await anyio.to_thread.run_sync(batch) == 1
        assert len(emu.state.generations.rows) == 2
    rows = {row["line"]: row for row in manifest(tmp_path / "out")}
    assert rows[poison]["status"] == "unknown"
    assert "abandoned" in rows[poison]["error"]
    assert "--max-deliveries" in rows[poison]["error"]
    assert [rows[r.line]["status"] for r in requests[1:]] == ["succeeded", "succeeded"]


async def test_the_batch_client_paces_with_the_redis_it_was_given(tmp_path: Path) -> None:
    """``open_target`` hands ``redis_url`` to the client: an unreachable Redis fails its
    start with ``FleetUnavailableError`` (exit 3 in the CLI), the password redacted."""
    port = RedisServer().port  # a free port nobody listens on
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    options = TargetOptions(api_key="k", base_url="http://127.0.0.1:1", redis_url=url)
    assert "hunter2" not in repr(options)
    with pytest.raises(FleetUnavailableError) as caught:
        async with open_target(options, notice=lambda text: None):
            pass  # pragma: no cover - the client does not start
    assert f"redis://:***@127.0.0.1:{port}/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_client_that_cannot_reach_redis_at_start_exits_3_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command whose fleet client cannot reach Redis at start: exit 3, URL redacted."""
    port = RedisServer().port
    monkeypatch.setenv(ENV_REDIS_URL, f"redis://:hunter2@127.0.0.1:{port}/0")
    args = [
        "estimate",
        "--prompt",
        "a lighthouse",
        "--api-key",
        "k",
        "--base-url",
        "http://127.0.0.1:1",
    ]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert f"redis://:***@127.0.0.1:{port}/0" in err
    assert "hunter2" not in err
