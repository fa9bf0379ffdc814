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

import anyio

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
