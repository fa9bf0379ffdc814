"""What the command prints: human text by default, JSON with ``--json``, one-line errors.

Exit codes (also in ``aurous --help`` and the README):

====  =====================================================================
0     success (for ``batch``/``generate``/``wait``: every line/job succeeded)
1     some lines or jobs ended without success (the others were completed)
2     usage error or bad input (every bad line is listed; nothing was sent), or an
      output directory that cannot be used as it is (unreadable journal, outputs
      without a journal, another run using it)
3     API or connection error (code, message and request id are printed)
4     cost refused (``--max-cost`` exceeded, or the confirmation declined)
70    internal error (a bug: set ``AUROUS_DEBUG=1`` for the traceback)
130   interrupted (Ctrl-C); re-run the same command to resume a batch
====  =====================================================================
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import TextIO

import attrs
from rich.console import Console

from .._errors import APIStatusError, AurousError, InvalidParameterError

__all__ = [
    "EXIT_API",
    "EXIT_CODES_HELP",
    "EXIT_COST",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "Output",
    "error_text",
    "money",
    "printable",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_COST = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success (batch/generate/wait: every line or job succeeded)
  1    some lines or jobs ended without success; the others were completed
  2    usage error or bad input (every bad line is listed; nothing was sent), or an
       output directory that cannot be used as it is
  3    API or connection error (code, message and request id are printed)
  4    cost refused (--max-cost exceeded, or the confirmation declined)
  70   internal error (set AUROUS_DEBUG=1 for the traceback)
  130  interrupted; re-run the same batch command to resume it
"""


#: C0 and C1 control characters: text from a server (an id, an error message) could
#: otherwise move the cursor, rewrite the terminal's title or break a line in two.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def money(value: float | None) -> str:
    """A credit amount as people read it (``1,234.5``; ``-`` for none)."""
    if value is None:
        return "-"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class CommandError(Exception):
    """A failure the user can fix, reported as one line with a documented exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def error_text(exc: BaseException) -> str:
    """One line: status and code, message, request id."""
    if isinstance(exc, APIStatusError):
        head = f"{exc.status} {exc.code}" if exc.code else str(exc.status)
        tail = f" (request id {exc.request_id})" if exc.request_id else ""
        return f"{head}: {exc.message}{tail}"
    if isinstance(exc, InvalidParameterError):
        return exc.message
    if isinstance(exc, AurousError):
        tail = f" (request id {exc.request_id})" if exc.request_id else ""
        return f"{type(exc).__name__}: {exc.message}{tail}"
    return f"{type(exc).__name__}: {exc}"


@attrs.define
class Output:
    """The command's two streams: results on stdout, progress and notices on stderr."""

    json_mode: bool = False
    stdout: TextIO = attrs.field(factory=lambda: sys.stdout)
    stderr: TextIO = attrs.field(factory=lambda: sys.stderr)
    _out: Console = attrs.field(init=False)
    _err: Console = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._out = Console(file=self.stdout, highlight=False, soft_wrap=True)
        self._err = Console(file=self.stderr, highlight=False, soft_wrap=True)

    @property
    def progress_console(self) -> Console:
        return self._err

    def notice(self, text: str) -> None:
        """A one-line note for people (stderr), e.g. which API is used."""
        self._err.print(printable(text), markup=False)

    def error(self, text: str) -> None:
        self._err.print(f"aurous: error: {printable(text)}", markup=False, style="red")

    def result(self, data: object, human: Callable[[], None] | str | None = None) -> None:
        """``data`` as JSON with ``--json``; otherwise ``human`` (text or a printer)."""
        if self.json_mode:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
            self.stdout.flush()
        elif callable(human):
            human()
        elif human is not None:
            self.line(human)

    def line(self, text: str) -> None:
        self._out.print(printable(text), markup=False)
