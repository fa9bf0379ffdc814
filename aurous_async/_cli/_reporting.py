"""What a batch-like run tells and asks the user: bad input, the cost gate, the summary.

Shared by ``batch``/``generate`` on one machine (``_commands``) and the fleet batch
(``_fleet_batch``), so both refuse, ask and sum up in the same words and exit codes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ._inputs import InputFileError
from ._journal import Line
from ._output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Output, money

__all__ = ["NOT_DOWNLOADED", "approve_cost", "report_input_errors", "summarize"]

#: The summary's name for a succeeded line whose files could not be saved.
NOT_DOWNLOADED = "not downloaded"


def report_input_errors(out: Output, error: InputFileError) -> int:
    """Print every bad line of the input; return the usage exit code (nothing was sent)."""
    for text in error.lines():
        out.error(text)
    out.notice("nothing was submitted")
    return EXIT_USAGE


def approve_cost(
    out: Output, *, total: float, max_cost: float | None, question: str, ask: bool
) -> bool:
    """Whether the run may go on: the estimated ``total`` is within ``max_cost`` and,
    when ``ask``, the user said yes to ``question`` (refusals are printed)."""
    if max_cost is not None and total > max_cost:
        out.error(
            f"the estimated total of {money(total)} credits is over --max-cost "
            f"{money(max_cost)}; nothing was submitted"
        )
        return False
    return not ask or _confirm(out, question)


def _confirm(out: Output, question: str) -> bool:
    if not sys.stdin.isatty():
        out.error("cost not confirmed: pass --yes to run without a terminal")
        return False
    # Nothing runs concurrently yet, so a blocking prompt holds nothing up (and Ctrl-C
    # interrupts it directly).
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _final_status(line: Line) -> str:
    """The line's status as the summary counts it: a success without its files is not one."""
    if line.status == "succeeded" and not line.files:
        return NOT_DOWNLOADED
    return line.status


def summarize(
    out: Output, directory: Path, manifest: Path, lines: Sequence[Line], *, mode: str
) -> int:
    """Print (or give as JSON) the run's counts, charge and manifest; return the exit code."""
    counts: dict[str, int] = {}
    for line in lines:
        status = _final_status(line)
        counts[status] = counts.get(status, 0) + 1
    ok = all(_final_status(line) == "succeeded" for line in lines)
    charged = sum(line.cost or 0.0 for line in lines if line.status == "succeeded")
    data: dict[str, object] = {
        "ok": ok,
        "out": str(directory),
        "manifest": str(manifest),
        "lines": len(lines),
        "counts": counts,
        "charged": charged,
    }
    if mode == "generate":
        data["results"] = [line.manifest() for line in lines[-1:]]

    def human() -> None:
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        if mode == "generate" and lines:
            last = lines[-1]
            files = ", ".join(str(directory / name) for name in last.files) or "no files"
            out.line(f"{last.generation_id or '-'} {last.status}: {files}")
            if last.error:
                out.line(f"error: {last.error}")
        out.line(f"{len(lines)} line(s): {summary}; charged {money(charged)} credits")
        out.line(f"manifest: {manifest}")

    out.result(data, human)
    return EXIT_OK if ok else EXIT_FAILED
