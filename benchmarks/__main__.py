"""``python -m benchmarks [--quick]``: run every benchmark, print the tables, write RESULTS.md.

Full mode takes under 15 minutes, ``--quick`` about 2. ``--only NAME`` runs some sections
(startup, client_cpu, emulator_load, pollers, batch_throughput, and any other public module
of this package with a ``run(quick)`` function) and replaces just those in the file; every
section says when it was run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from . import client_cpu, emulator_load, startup

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTIONS: dict[str, Callable[[bool], str]] = {
    "startup": lambda quick: startup.section(quick=quick),
    "client_cpu": lambda quick: client_cpu.section(quick=quick),
    "emulator_load": lambda quick: emulator_load.section(quick=quick),
}
#: Modules written alongside these, each exposing ``run(quick: bool = False) -> str`` (a
#: markdown section); a missing one is reported as skipped rather than failing the run.
EXTERNAL = ("pollers", "batch_throughput", "downloads")
_NOT_SECTIONS = {"__main__", "__init__", *SECTIONS}


def _external(name: str) -> Callable[[bool], str]:
    def section(quick: bool) -> str:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            return f"## {name}\n\n_Skipped: benchmarks/{name}.py does not exist yet._"
        module = importlib.import_module(f"benchmarks.{name}")
        text: str = module.run(quick=quick)
        return text

    return section


def _discover() -> list[str]:
    """Public modules of this package beyond the known ones, in name order."""
    here = Path(__file__).parent
    found = sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))
    return [name for name in found if name not in _NOT_SECTIONS and name not in EXTERNAL]


for _name in (*EXTERNAL, *_discover()):
    SECTIONS[_name] = _external(_name)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(quick: bool, names: Sequence[str]) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    now = stamp()
    mode = "quick (`--quick`)" if quick else "full"
    return "\n".join(
        [
            "# Benchmark results",
            "",
            "Every figure is a ratio against a baseline measured in the same run, interleaved "
            "with it: absolute numbers move with the machine and its other tenants, ratios much "
            "less. Servers run in their own process pinned to core 0; the measuring process is "
            "pinned to core 1.",
            "",
            "| | |",
            "|---|---|",
            f"| last written | {now} (each section gives its own run time) |",
            f"| machine | {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"{cpu_model()} |",
            f"| load average at start | {load} (other work shares these cores) |",
            f"| Python | {platform.python_implementation()} {platform.python_version()} |",
            f"| aiohttp / httpx / aurous_async | {_version('aiohttp')} / {_version('httpx')} / "
            f"{_version('aurous-async')} |",
            f"| mode | {mode}; sections: {', '.join(names)} |",
            "",
            "Reproduce: `nox -s bench` (full, about 15 minutes; `nox -s bench -- --quick` for a "
            "2-minute smoke run), or `.venv/bin/python -m benchmarks [--quick] [--only NAME]` "
            "from a checkout with `pip install -e '.[dev,bench]'`.",
            "",
        ]
    )


_MARK = "<!-- section: {} -->"
_MARKED = re.compile(r"^<!-- section: (\S+) -->$", re.MULTILINE)


def read_sections(text: str) -> dict[str, str]:
    """The marked sections of a results file, by name, in file order."""
    marks = list(_MARKED.finditer(text))
    return {
        mark[1]: text[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, mark in enumerate(marks)
    }


def stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (under 2 minutes)")
    parser.add_argument(
        "--only", action="append", choices=list(SECTIONS), help="run only these sections"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args(argv)
    names = args.only or list(SECTIONS)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    sections = read_sections(args.output.read_text()) if args.only and args.output.exists() else {}
    failed = False
    for name in names:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)  # a section may have pinned this process
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            text = SECTIONS[name](args.quick)
        except Exception:
            failed = True
            traceback.print_exc()
            text = f"## {name}\n\n_Failed:_\n\n```\n{traceback.format_exc(limit=3)}```"
        took = time.perf_counter() - started
        print(f"[bench] {name} took {took:.0f} s", file=sys.stderr, flush=True)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        sections[name] = (
            f"\n{text}\n\n_Section run time: {took:.0f} s, at {stamp()} "
            f"(load average {load:.2f})._\n\n"
        )
    ordered = [name for name in SECTIONS if name in sections]
    body = "".join(_MARK.format(name) + sections[name] for name in ordered)
    text = header(args.quick, ordered) + "\n" + body
    print(text)
    args.output.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
