"""Issue 6: start-up time of ``aurous --help`` and ``import aurous_async``.

Wall time of whole commands, each a fresh interpreter (bytecode caches warm), against
``python -c pass`` (the interpreter alone) and ``python -c "import aiohttp"`` (the
dependency the SDK cannot avoid), interleaved and repeated; medians are shown. A second
table splits ``import aurous_async`` by top-level package with ``-X importtime``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import attrs

from ._proc import CLIENT_CORE, pin_to

PYTHON = sys.executable


def commands() -> dict[str, list[str]]:
    script = Path(PYTHON).with_name("aurous")
    cli = (
        [str(script), "--help"]
        if script.exists()
        else [
            PYTHON,
            "-c",
            "import sys; from aurous_async._cli import main; sys.exit(main(['--help']))",
        ]
    )
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        'python -c "import aiohttp"': [PYTHON, "-c", "import aiohttp"],
        'python -c "import aurous_async"': [PYTHON, "-c", "import aurous_async"],
        "aurous --help": cli,
    }


@attrs.frozen
class Sample:
    wall: float
    cpu: float


def _time(command: list[str]) -> tuple[Sample, int]:
    """Wall time, and the child's own user + system CPU time (robust to a busy machine)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime), proc.returncode


Samples = dict[str, list[Sample]]


def run(*, quick: bool = False) -> tuple[Samples, dict[str, int]]:
    pin_to(CLIENT_CORE)
    cmds = commands()
    codes = {name: _time(cmd)[1] for name, cmd in cmds.items()}  # warm caches
    samples: Samples = {name: [] for name in cmds}
    for _ in range(5 if quick else 20):
        for name, cmd in cmds.items():
            samples[name].append(_time(cmd)[0])
    return samples, codes


def import_breakdown(
    runs: int = 5, top: int = 6
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Median self time (ms) of ``import aurous_async``: per top-level package, and per
    module of the SDK itself."""
    totals: dict[str, list[float]] = defaultdict(list)
    modules: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        done = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", "import aurous_async"],
            capture_output=True,
            text=True,
            check=True,
        )
        per_run: dict[str, float] = defaultdict(float)
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
            per_run[name.split(".")[0]] += int(self_us) / 1000
            if name.startswith("aurous_async"):
                modules[name].append(int(self_us) / 1000)
        for name, ms in per_run.items():
            totals[name].append(ms)

    def ranked(table: dict[str, list[float]], count: int) -> list[tuple[str, float]]:
        medians = {k: statistics.median(v + [0.0] * (runs - len(v))) for k, v in table.items()}
        return sorted(medians.items(), key=lambda item: -item[1])[:count]

    return ranked(totals, top), ranked(modules, 4)


def _med(samples: list[Sample], what: str) -> float:
    return statistics.median(s.wall if what == "wall" else s.cpu for s in samples)


def table(samples: Samples, codes: dict[str, int], *, runs: int = 5) -> str:
    reps = len(samples["python -c pass"])
    lines = [
        f"Median of {reps} interleaved runs each, pinned to core 1. Wall time is what a "
        "user waits; CPU (the child's user + system time) is steadier on a busy machine.",
        "",
        "| command | wall ms | vs `python -c pass` | CPU ms | minus `python -c pass` (CPU) "
        "| exit code |",
        "|---|---|---|---|---|---|",
    ]
    base_wall = _med(samples["python -c pass"], "wall")
    base_cpu = _med(samples["python -c pass"], "cpu")
    for name, values in samples.items():
        wall, cpu = _med(values, "wall"), _med(values, "cpu")
        lines.append(
            f"| `{name}` | {wall * 1000:.0f} | {wall / base_wall:.2f}x | {cpu * 1000:.0f} "
            f"| {(cpu - base_cpu) * 1000:+.0f} ms | {codes[name]} |"
        )

    def beyond(name: str, what: str) -> float:
        return _med(samples[name], what) - _med(samples["python -c pass"], what)

    aio = 'python -c "import aiohttp"'
    sdk = 'python -c "import aurous_async"'
    cli = "aurous --help"
    lines += [
        "",
        "Beyond the bare interpreter, against `import aiohttp` alone: `import aurous_async` "
        f"{beyond(sdk, 'wall') / beyond(aio, 'wall'):.2f}x wall, "
        f"{beyond(sdk, 'cpu') / beyond(aio, 'cpu'):.2f}x CPU; `aurous --help` "
        f"{beyond(cli, 'wall') / beyond(aio, 'wall'):.2f}x wall, "
        f"{beyond(cli, 'cpu') / beyond(aio, 'cpu'):.2f}x CPU.",
        "",
        f"Where `import aurous_async` spends its time (self time, median of {runs} "
        "`-X importtime` runs; by top-level package, then the SDK's own slowest modules):",
        "",
        "| package or module | self ms |",
        "|---|---|",
    ]
    packages, own = import_breakdown(runs)
    lines += [f"| {name} | {ms:.1f} |" for name, ms in packages]
    lines += [f"| `{name}` | {ms:.1f} |" for name, ms in own]
    return "\n".join(lines)


def section(*, quick: bool = False) -> str:
    samples, codes = run(quick=quick)
    return "## Start-up time (issue 6)\n\n" + table(samples, codes, runs=3 if quick else 5)


if __name__ == "__main__":
    print(section(quick=True))
