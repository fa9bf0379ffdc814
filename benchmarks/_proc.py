"""Start servers in their own process, pinned to one core, so server CPU is not counted."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence


def pin_to(core: int) -> None:
    """Pin this process to one core when the platform allows it."""
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


@contextlib.contextmanager
def server_process(args: Sequence[str], *, core: int = 0) -> Iterator[str]:
    """Run ``python <args>`` pinned to ``core``; yield the base URL it prints first."""
    command = [sys.executable, *args]
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        command = ["taskset", "-c", str(core), *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first:
            raise RuntimeError(f"server did not start: {' '.join(command)}")
        yield first.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
