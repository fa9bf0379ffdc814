"""Helpers of the CLI tests: run ``aurous`` in-process or as a subprocess, fast emulators."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc

from aurous_async._cli import main
from aurous_async.testing import BucketSpec, Emulator, run_emulator

REPO = Path(__file__).resolve().parents[2]

#: Buckets large enough that a few hundred creates never wait (the documented ones would
#: pace 200 creates over 80 s; pacing itself is the governor's tests' business).
ROOMY_BUCKETS = {
    name: BucketSpec(100_000, 6_000_000)
    for name in ("get", "images_post", "estimate_post", "default")
}


@contextlib.asynccontextmanager
async def fast_emulator(time_scale: float = 50.0, **settings: Any) -> AsyncIterator[Emulator]:
    """An emulator whose jobs take well under a second and whose buckets never run dry."""
    settings.setdefault("buckets", ROOMY_BUCKETS)
    async with run_emulator(time_scale=time_scale, **settings) as emu:
        yield emu


def env_for(emu: Emulator) -> dict[str, str]:
    """The environment of a subprocess pointed at ``emu``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUROUS_")}
    env["AUROUS_API_KEY"] = emu.api_key
    return env


async def start_cli(args: Sequence[str], env: dict[str, str], log: Path) -> anyio.abc.Process:
    """Start ``python -m aurous_async._cli ARGS`` with its output going to ``log``."""
    handle = log.open("ab")
    try:
        return await anyio.open_process(
            [sys.executable, "-m", "aurous_async._cli", *args],
            env=env,
            cwd=REPO,
            stdin=None,
            stdout=handle,
            stderr=handle,
        )
    finally:
        handle.close()


def free_port() -> int:
    """A loopback port nothing listens on (the OS picked it free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll a condition another process makes true; there is no event to wait on."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - the condition lives in another process
            await anyio.sleep(0.02)


class Result:
    """The outcome of an in-process ``aurous`` run."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


async def run_cli(args: Sequence[str], emu: Emulator | None = None) -> Result:
    """Run ``aurous ARGS`` in a worker thread (its own event loop) against ``emu``."""
    full = list(args)
    if emu is not None:
        full += ["--api-key", emu.api_key, "--base-url", emu.base_url]

    def call() -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(full)
        return Result(code, out.getvalue(), err.getvalue())

    return await anyio.to_thread.run_sync(call)


def manifest(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def write_jsonl(path: Path, rows: Sequence[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# -- a standalone emulator process, shared by several ``aurous`` processes ---------------

#: The control token of ``standalone_emulator`` (its ``/_emulator/`` routes).
CONTROL_TOKEN = "fleet-test-control-token"


class StandaloneEmulator:
    """A ``python -m aurous_async.testing`` process and what it printed at start."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    async def stats(self) -> dict[str, Any]:
        """What ``GET /_emulator/stats`` answers (request and generation counts)."""
        headers = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.base_url}/_emulator/stats", headers=headers) as response,
        ):
            stats: dict[str, Any] = await response.json()
        return stats

    async def generations(self) -> dict[str, Any]:
        """The demo team's generation counts."""
        teams: dict[str, Any] = (await self.stats())["generations"]
        assert len(teams) <= 1
        return next(iter(teams.values()), {"total": 0, "by_status": {}})

    async def rate_limited(self) -> int:
        """How many API requests the emulator answered with 429, on every route."""
        return int((await self.stats())["requests"]["by_status"].get("429", 0))


@contextlib.asynccontextmanager
async def standalone_emulator(
    time_scale: float, *buckets: str
) -> AsyncIterator[StandaloneEmulator]:
    """Start the emulator with roomy buckets, except ``buckets`` (``NAME=CAPACITY/PER_MIN``);
    kill it (by its pid) at the end."""
    command = [sys.executable, "-m", "aurous_async.testing", "--port", "0"]
    command += ["--time-scale", str(time_scale), "--bucket-scale", "50", "--no-request-log"]
    for bucket in buckets:
        command += ["--bucket", bucket]
    env = {**os.environ, "AUROUS_EMULATOR_CONTROL_TOKEN": CONTROL_TOKEN}
    async with await anyio.open_process(command, env=env) as process:
        try:
            assert process.stdout is not None
            printed = b""
            with anyio.fail_after(30):
                while b"Demo API key: " not in printed or not printed.endswith(b"\n"):
                    printed += await process.stdout.receive()
            text = printed.decode()
            base_url = text.split("listening on ")[1].split()[0]
            api_key = text.split("Demo API key: ")[1].split()[0]
            yield StandaloneEmulator(base_url, api_key)
        finally:
            process.kill()


def write_prompts(path: Path, count: int) -> Path:
    """A prompts file of ``count`` distinct lines."""
    path.write_text("".join(f"a lighthouse at dusk, study {n}\n" for n in range(1, count + 1)))
    return path


def saved(directory: Path) -> int:
    """How many output files a process has saved."""
    return len(list(directory.glob("0*_*.*"))) if directory.is_dir() else 0


def check_fleet_manifests(directories: Sequence[Path], lines: int) -> None:
    """Every fleet process's manifest lists every line succeeded, with the same key and
    files that exist in the directory of the worker it names."""
    manifests = [manifest(directory) for directory in directories]
    for records in manifests:
        assert [r["line"] for r in records] == list(range(1, lines + 1))
        assert {r["status"] for r in records} == {"succeeded"}
        for record in records:
            assert record["files"]
            assert all((Path(record["worker_out"]) / name).is_file() for name in record["files"])
    keys = [[r["key"] for r in records] for records in manifests]
    assert all(k == keys[0] for k in keys)
    assert len(set(keys[0])) == lines
