"""Start servers in their own process, pinned to one core, so server CPU is not counted.

The server runs on ``SERVER_CORE`` and whatever measures (load generator, client under
test) pins itself to ``CLIENT_CORE``. On a one-core machine pinning is skipped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

import attrs

SERVER_CORE = 0
CLIENT_CORE = 1


def can_pin(core: int) -> bool:
    """Whether ``core`` exists and this platform can pin a process to it."""
    return hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1)


def pin_to(core: int) -> None:
    """Pin this process to one core when the platform allows it."""
    if can_pin(core):
        os.sched_setaffinity(0, {core})


def pinned(command: Sequence[str], core: int) -> list[str]:
    """``command`` prefixed with ``taskset -c core`` when pinning is possible."""
    if can_pin(core):
        return ["taskset", "-c", str(core), *command]
    return list(command)


@attrs.frozen
class Server:
    """A running server process: its base URL and a way to read its CPU time."""

    url: str
    pid: int
    banner: tuple[str, ...]

    def cpu_seconds(self) -> float:
        """CPU seconds the server process has used so far (Linux; NaN elsewhere)."""
        return self._schedstat()[0]

    def wait_seconds(self) -> float:
        """Seconds the server was ready to run but waited for its core (other tenants)."""
        return self._schedstat()[1]

    def _schedstat(self) -> tuple[float, float]:
        # schedstat: CPU time and run-queue wait in ns, for the (single) main thread.
        try:
            with open(f"/proc/{self.pid}/schedstat") as f:
                cpu_ns, wait_ns, _ = f.read().split()
        except (OSError, ValueError):
            return float("nan"), float("nan")
        return int(cpu_ns) / 1e9, int(wait_ns) / 1e9


@contextlib.contextmanager
def server(
    args: Sequence[str], *, core: int = SERVER_CORE, banner_lines: int = 1
) -> Iterator[Server]:
    """Run ``python <args>`` pinned to ``core``; the URL is the last word of its first line.

    ``taskset`` execs the interpreter, so the pid is the server's own.
    """
    command = pinned([sys.executable, *args], core)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(banner_lines)]
        if not lines[0]:
            raise RuntimeError(f"server did not start: {' '.join(command)}")
        url = lines[0].strip().rsplit(" ", 1)[-1]
        yield Server(url=url, pid=proc.pid, banner=tuple(line.strip() for line in lines))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def server_process(args: Sequence[str], *, core: int = SERVER_CORE) -> Iterator[str]:
    """Run ``python <args>`` pinned to ``core``; yield the base URL it prints first."""
    with server(args, core=core) as running:
        yield running.url
