"""Live progress of a batch: a ``rich`` panel on a terminal, plain lines elsewhere (CI).

Shows the count of lines per status, throughput, credits held and charged, the time
spent waiting on rate limits, and an ETA. Progress goes to stderr; results to stdout.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._journal import FINAL_STATUSES, PENDING, REJECTED, UNKNOWN, Line
from ._output import money, printable

__all__ = ["BatchProgress"]

_RUNNING = frozenset({"queued", "pending", "processing", "submitting"})
_ORDER = (
    PENDING,
    "submitting",
    "queued",
    "processing",
    "downloading",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
    "moderation_rejected",
    REJECTED,
    UNKNOWN,
)
#: Plain output prints a summary line this often (seconds).
PLAIN_EVERY = 5.0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class BatchProgress:
    """The state of every line of a batch, and its rendering.

    Args:
        lines: the journal rows at the start of the run.
        console: where progress goes (stderr).
        rate_wait: returns the seconds spent waiting on rate limits so far.
        quiet: show nothing (``--json``).
        live: animate a panel (a terminal); otherwise print plain lines.
    """

    def __init__(
        self,
        lines: list[Line],
        console: Console,
        *,
        rate_wait: Callable[[], float],
        quiet: bool = False,
        live: bool | None = None,
    ) -> None:
        self.console = console
        self._rate_wait = rate_wait
        self._quiet = quiet
        self._live_wanted = console.is_terminal if live is None else live
        self.status: dict[int, str] = {}
        self.cost: dict[int, float] = {}
        # Kept up to date on every change, so rendering never walks every line.
        self._counts: collections.Counter[str] = collections.Counter()
        self._held = 0.0
        self._charged = 0.0
        # A fleet batch shows every process's counts, read from Redis (``show_fleet``).
        self._fleet: collections.Counter[str] | None = None
        self._fleet_charged = 0.0
        for line in lines:
            self._set(line)
        self.total = len(lines)
        self._done_at_start = self.finished
        self._started = time.monotonic()
        self._live: Live | None = None
        self._last_plain = 0.0

    # -- state -----------------------------------------------------------------------
    def _set(self, line: Line) -> None:
        number = line.line
        old = self.status.get(number)
        if old is not None:
            self._counts[old] -= 1
            self._account(old, -self.cost.get(number, 0.0))
        status = line.status
        if status == "succeeded" and not line.files:
            status = "downloading"
        self.status[number] = status
        if line.cost is not None:
            self.cost[number] = line.cost
        self._counts[status] += 1
        self._account(status, self.cost.get(number, 0.0))

    def _account(self, status: str, amount: float) -> None:
        if status in _RUNNING:
            self._held += amount
        elif status in ("succeeded", "downloading"):
            self._charged += amount

    def show_fleet(self, counts: Mapping[str, int], charged: float) -> None:
        """Show the counts and credits charged of a whole fleet batch from now on."""
        self._fleet = collections.Counter(counts)
        self._fleet_charged = charged

    @property
    def _shown(self) -> collections.Counter[str]:
        return self._counts if self._fleet is None else self._fleet

    @property
    def finished(self) -> int:
        return sum(n for s, n in self._shown.items() if s in FINAL_STATUSES or s == REJECTED)

    def counts(self) -> dict[str, int]:
        counts = self._shown
        known = {name: counts[name] for name in _ORDER if counts[name] > 0}
        known.update({n: c for n, c in sorted(counts.items()) if n not in known and c > 0})
        return known

    @property
    def held(self) -> float:
        return max(0.0, self._held)

    @property
    def charged(self) -> float:
        return max(0.0, self._charged if self._fleet is None else self._fleet_charged)

    def throughput(self) -> float:
        """Lines finished per minute in this run."""
        elapsed = time.monotonic() - self._started
        done = self.finished - self._done_at_start
        return 60.0 * done / elapsed if elapsed > 0 and done > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.throughput()
        left = self.total - self.finished
        return None if rate <= 0 else 60.0 * left / rate

    def update(self, line: Line, message: str | None = None) -> None:
        """Take a line's new state; print ``message`` (one line) above the panel."""
        self._set(line)
        if self._quiet:
            return
        if message is not None:
            if self._live is not None:
                # Printing shows the panel as of its last refresh; bring it up to date.
                self._live.refresh()
            self._print(message)
        if self._live is None:
            now = time.monotonic()
            if now - self._last_plain >= PLAIN_EVERY:
                self._last_plain = now
                self._print(self.summary_line())

    # -- rendering -------------------------------------------------------------------
    def _print(self, text: str) -> None:
        # Server text (ids, errors, unknown statuses): never markup, no control codes.
        self.console.print(printable(text), markup=False, highlight=False, soft_wrap=True)

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        eta = self.eta()
        parts = [
            f"{self.finished}/{self.total} finished ({counts})",
            f"{self.throughput():.1f}/min",
            f"held {money(self.held)} / charged {money(self.charged)} credits",
            f"rate-limit wait {self._rate_wait():.1f}s",
        ]
        if eta is not None and self.finished < self.total:
            parts.append(f"ETA {_duration(eta)}")
        return "; ".join(parts)

    def _panel(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right")
        table.add_column()
        for status, count in self.counts().items():
            table.add_row(str(count), Text(printable(status)))
        eta = self.eta()
        stats = Text.assemble(
            (f"{self.finished}/{self.total}", "bold"),
            " finished  ",
            f"{self.throughput():.1f}/min  ",
            f"held {money(self.held)}  charged {money(self.charged)} credits  ",
            f"rate-limit wait {self._rate_wait():.1f}s  ",
            f"ETA {_duration(eta)}" if eta is not None else "ETA --",
        )
        return Group(table, stats)

    def __enter__(self) -> BatchProgress:
        if not self._quiet and self._live_wanted:
            self._live = Live(
                get_renderable=self._panel,
                console=self.console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
        elif not self._quiet:
            self._print(self.summary_line())

    async def tick(self) -> None:
        """Print the plain summary every few seconds even when nothing finishes."""
        while True:
            await anyio.sleep(PLAIN_EVERY)
            if self._live is None and not self._quiet:
                self._last_plain = time.monotonic()
                self._print(self.summary_line())
