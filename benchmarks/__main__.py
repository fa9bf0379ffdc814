"""``python -m benchmarks``: run every benchmark, print the tables, write RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from . import emulator_load


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    sections = [f"# Benchmark results\n\nMachine: {machine()}\n"]
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    load = emulator_load.table(emulator_load.run(seconds=seconds))
    sections.append("## Emulator throughput, mixed traffic\n\n" + load + "\n")
    text = "\n".join(sections)
    print(text)
    Path(__file__).with_name("RESULTS.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
