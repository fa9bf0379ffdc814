"""``aurous batch PROMPTS --out DIR --redis URL``: one batch split between processes.

Every process started with the same input and the same Redis claims lines from the
batch's Redis stream (``_fleet._redis_batch``), runs each through the ordinary engine
(``Batch.run_line``: create, wait, download into its own ``DIR``), and records each
state change in Redis instead of the SQLite journal. A line's idempotency key is the
journal's (``make_key``) under a batch id derived from the input's content, so it is the
same in every process: a line taken over from a dead process, or seeded again after
Redis lost the batch, is replayed by the API, never charged twice. When every line is
closed, each process writes ``DIR/manifest.jsonl`` for the whole batch from Redis, each
record naming the worker that saved its files.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from .._config import ENV_API_KEY
from .._errors import FleetUnavailableError
from .._fleet._namespace import Namespace
from .._fleet._redis_url import validate_redis_url
from ._batch import Batch, estimate_requests, write_manifest
from ._commands import target_options
from ._directory import lock_directory
from ._files import is_safe_name
from ._inputs import InputFileError, Request, canonical
from ._journal import FINAL_STATUSES, PENDING, REJECTED, UNKNOWN, Line, make_key
from ._output import EXIT_COST, CommandError, Output, money

try:
    from .._fleet._redis_batch import BatchState, Claimed, RedisBatch
    from .._fleet._redis_link import RedisLink
except ImportError as missing:  # pragma: no cover - only without the redis extra
    if (missing.name or "").partition(".")[0] != "redis":
        raise
    raise CommandError(
        "--redis needs the Redis client: pip install 'aurous-async[redis]'"
    ) from None
from ._progress import BatchProgress
from ._reporting import approve_cost, report_input_errors, summarize
from ._target import Target, open_target, wants_embedded

__all__ = ["REDIS_GIVE_UP", "content_batch_id", "run_fleet_batch"]

_T = TypeVar("_T")

#: Seconds one Redis call of a fleet batch may take (seeding a large batch is one call).
REDIS_CALL_TIMEOUT = 2.0
#: Seconds Redis may stay unreachable during a run before the run stops (exit 3).
REDIS_GIVE_UP = 120.0
#: Longest pause between two looks for lines to claim.
_IDLE_POLL = 0.5
#: Seconds between refreshes of the fleet-wide counts in the live view.
_COUNTS_EVERY = 1.0


def content_batch_id(requests: Sequence[Request]) -> str:
    """The batch id of an input: a hash of every line's number and request.

    Processes given the same input join the same batch; a different input is a
    different batch, even on the same Redis.
    """
    text = canonical([[request.line, request.digest] for request in requests])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LineTakenOver(Exception):
    """Another process owns the line now (this one was too slow to renew its claim)."""


def _closes(line: Line) -> bool:
    """Whether the engine has nothing left to do for ``line`` in this run."""
    if line.error is not None:
        return True
    if line.status == "succeeded":
        return bool(line.files)
    return line.final or line.status in (REJECTED, UNKNOWN)


def _needs_reopening(status: str, record: Mapping[str, Any]) -> bool:
    """A closed line a new run should try again (as a re-run of the journal would)."""
    if status == "succeeded":
        return not record.get("files")
    return status not in FINAL_STATUSES and status != PENDING


class _RedisGuard:
    """Runs batch calls through a Redis outage: retried with backoff, bounded overall."""

    def __init__(self, out: Output, url: str, give_up: float = REDIS_GIVE_UP) -> None:
        self._out = out
        self._url = url
        self._give_up = give_up
        self._lost_since: float | None = None

    async def __call__(self, call: Callable[[], Awaitable[_T]]) -> _T:
        delay = 0.1
        while True:
            try:
                result = await call()
            except FleetUnavailableError as exc:
                now = anyio.current_time()
                if self._lost_since is None:
                    self._lost_since = now
                    self._out.notice(f"{exc.message}; retrying (lines in progress go on)")
                elif now - self._lost_since > self._give_up:
                    raise FleetUnavailableError(
                        f"{exc.message}; gave up after {self._give_up:g} s (re-run the same "
                        "command to resume: lines already created are replayed, not charged again)"
                    ) from None
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if self._lost_since is not None:
                self._lost_since = None
                self._out.notice(f"Redis at {self._url} answers again")
            return result


def _pending_lines(
    batch_id: str, requests: Sequence[Request], estimates: Mapping[int, float]
) -> dict[int, Line]:
    """Every line as it starts, by number: the journal's key (``make_key``), no state."""
    return {
        request.line: Line(
            line=request.line,
            kind=request.kind,
            request_hash=request.digest,
            request=canonical(dict(request.body)),
            attempt=0,
            idempotency_key=make_key(batch_id, request.line, request.digest, 0),
            estimate=estimates.get(request.line),
            generation_id=None,
            status=PENDING,
            cost=None,
            files=(),
            error=None,
        )
        for request in sorted(requests, key=lambda request: request.line)
    }


@attrs.define
class _Context:
    """What every line of this process's share of the batch needs."""

    fleet: RedisBatch
    guard: _RedisGuard
    pending: Mapping[int, Line]
    out_dir: str


def _build_line(ctx: _Context, number: int, status: str, record: Mapping[str, Any]) -> Line:
    generation_id = record.get("id")
    cost = record.get("cost")
    error = record.get("error")
    files = record.get("files")
    return attrs.evolve(
        ctx.pending[number],
        generation_id=generation_id if isinstance(generation_id, str) else None,
        status=status,
        cost=float(cost) if isinstance(cost, (int, float)) else None,
        files=tuple(f for f in files if is_safe_name(f)) if isinstance(files, list) else (),
        error=error if isinstance(error, str) else None,
    )


class _FleetRecorder:
    """The engine's ``LineRecorder`` in a fleet batch: states go to Redis, under the claim."""

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx
        self.lines: dict[int, Line] = {}
        self.claims: dict[int, Claimed] = {}

    async def record(
        self,
        line: int,
        *,
        status: str,
        generation_id: str | None = None,
        cost: float | None = None,
        files: Sequence[str] | None = None,
        error: str | None = None,
    ) -> Line:
        """Commit a line's new state to Redis, closing the line when it is done.

        Raises:
            LineTakenOver: another process owns the line now; nothing was written.
            FleetUnavailableError: Redis stayed unreachable past ``REDIS_GIVE_UP``.
        """
        current = self.lines[line]
        updated = attrs.evolve(
            current,
            status=status,
            generation_id=generation_id or current.generation_id,
            cost=current.cost if cost is None else cost,
            files=current.files if files is None else tuple(files),
            error=error,
        )
        close = _closes(updated)
        record = {
            "status": status,
            "id": updated.generation_id,
            "cost": updated.cost,
            "files": list(updated.files),
            "error": updated.error,
            "key": updated.idempotency_key,
            "worker": self._ctx.fleet.consumer,
            "out": self._ctx.out_dir,
        }
        charged = updated.cost if close and status == "succeeded" else None
        fleet = self._ctx.fleet

        async def commit() -> bool:
            # Read the claim at each try: a re-seeded batch hands this line a new entry.
            claimed = self.claims[line]
            return await fleet.commit(claimed, status, record, close=close, charged=charged)

        if not await self._ctx.guard(commit):
            raise LineTakenOver(line)
        self.lines[line] = updated
        return updated


class _Worker:
    """This process's part of the batch: claim, renew, run lines, until all are closed."""

    def __init__(
        self,
        ctx: _Context,
        engine: Batch,
        recorder: _FleetRecorder,
        progress: BatchProgress,
        *,
        concurrency: int,
    ) -> None:
        self._ctx = ctx
        self._engine = engine
        self._recorder = recorder
        self._progress = progress
        self._concurrency = concurrency
        self._scopes: dict[int, anyio.CancelScope] = {}
        self._freed = anyio.Event()
        self._charged = 0.0

    async def run(self) -> None:
        """Work until every line of the batch is closed (by any process)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_claims)
            tg.start_soon(self._show_counts)
            tg.start_soon(self._progress.tick)
            async with anyio.create_task_group() as lines:
                while True:
                    state = await self._claim(lines)
                    if state is not None and state.complete and not self._scopes:
                        break
                    with anyio.move_on_after(_IDLE_POLL):
                        await self._freed.wait()
                    self._freed = anyio.Event()
            tg.cancel_scope.cancel()
        await self._refresh_counts()

    async def _claim(self, lines: anyio.abc.TaskGroup) -> BatchState | None:
        ctx = self._ctx
        free = max(0, self._concurrency - len(self._scopes))
        result = await ctx.guard(lambda: ctx.fleet.claim(free))
        if result is None:
            self._progress.console.print(
                "the batch is not in Redis (restarted empty?): seeding it again; lines "
                "created before are replayed under their idempotency keys (the API keeps "
                "them 24 h), not charged again",
                markup=False,
            )
            await ctx.guard(lambda: ctx.fleet.seed(list(ctx.pending)))
            return None
        state, claimed = result
        self._charged = state.charged
        for claim in claimed:
            known = self._recorder.claims.get(claim.line)
            self._recorder.claims[claim.line] = claim
            if known is None or claim.line not in self._scopes:
                self._scopes[claim.line] = anyio.CancelScope()
                lines.start_soon(self._run_line, claim)
        return state

    async def _run_line(self, claim: Claimed) -> None:
        number = claim.line
        scope = self._scopes[number]
        lost = False
        try:
            with scope:
                record = claim.record or {}
                line = _build_line(self._ctx, number, _record_status(record), record)
                self._recorder.lines[number] = line
                if claim.deliveries > self._ctx.fleet.max_deliveries:
                    await self._abandon(claim)
                else:
                    await self._engine.run_line(line)
        except LineTakenOver:
            lost = True
        finally:
            self._scopes.pop(number, None)
            self._recorder.claims.pop(number, None)
            self._recorder.lines.pop(number, None)
            self._freed.set()
        if lost or scope.cancelled_caught:
            self._progress.console.print(
                f"line {number}: another process took it over (this one's claim lapsed)",
                markup=False,
            )

    async def _abandon(self, claim: Claimed) -> None:
        """Close a line every process that took it stopped working on (one that crashes
        its process would otherwise be handed out forever): its outcome is unknown, so a
        re-run tries it again, under the same idempotency key."""
        held = claim.deliveries - 1
        error = (
            f"abandoned: the {held} processes that took this line each stopped before "
            f"finishing it (at most {self._ctx.fleet.max_deliveries}, --max-deliveries)"
        )
        await self._recorder.record(claim.line, status=UNKNOWN, error=error)
        self._progress.console.print(f"line {claim.line}: {error}", markup=False)

    async def _renew_claims(self) -> None:
        ctx = self._ctx
        every = ctx.fleet.claim_timeout / 4
        while True:
            await anyio.sleep(every)
            held = {claim.entry: claim.line for claim in self._recorder.claims.values()}
            lost = await ctx.guard(functools.partial(ctx.fleet.renew, list(held)))
            for entry in lost:
                line = held[entry]
                claim = self._recorder.claims.get(line)
                scope = self._scopes.get(line)
                if claim is not None and claim.entry == entry and scope is not None:
                    scope.cancel()

    async def _refresh_counts(self) -> None:
        # The view is only a view: a count Redis cannot give now waits for the next one.
        with contextlib.suppress(FleetUnavailableError):
            self._progress.show_fleet(await self._ctx.fleet.counts(), self._charged)

    async def _show_counts(self) -> None:
        while True:
            await self._refresh_counts()
            await anyio.sleep(_COUNTS_EVERY)


def _record_status(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    return status if isinstance(status, str) else PENDING


# -- the command -------------------------------------------------------------------------


def _check_options(args: argparse.Namespace) -> str:
    """The Redis URL, once the options are known to fit a fleet batch (nothing sent)."""
    url = validate_redis_url(args.redis)
    for flag, given in (("--force-new", args.force_new), ("--retry-failed", args.retry_failed)):
        if given:
            raise CommandError(
                f"{flag} cannot be combined with --redis (a fleet batch's keys "
                "come from its input, the same in every process)"
            )
    if wants_embedded(target_options(args)):
        raise CommandError(
            "--redis needs an API every process shares: pass --base-url or set "
            f"{ENV_API_KEY} (an emulator started inside each process would not be shared)"
        )
    return url


async def _fleet_view(ctx: _Context) -> tuple[list[Line], dict[int, dict[str, Any]]]:
    """Every line as Redis knows it, and the records (lines never recorded are pending)."""
    statuses = await ctx.guard(ctx.fleet.statuses)
    records = await ctx.guard(ctx.fleet.records)
    lines = [
        _build_line(ctx, number, statuses.get(number, PENDING), records.get(number, {}))
        for number in ctx.pending
    ]
    return lines, records


def write_fleet_manifest(
    out: Path, lines: Sequence[Line], workers: Mapping[int, Mapping[str, Any]]
) -> Path:
    """Write ``DIR/manifest.jsonl`` for every line, each naming the worker that saved
    its files (``worker``, and that worker's ``worker_out`` directory), atomically."""
    extra: dict[int, Mapping[str, object]] = {}
    for line in lines:
        record = workers.get(line.line, {})
        extra[line.line] = {"worker": record.get("worker"), "worker_out": record.get("out")}
    return write_manifest(out, lines, extra)


async def _reopen_unfinished(ctx: _Context) -> int:
    """Put back lines an earlier run closed without an outcome; return how many."""
    lines, records = await _fleet_view(ctx)
    reopened = 0
    for line in lines:
        if line.line in records and _needs_reopening(line.status, records[line.line]):
            reopen = functools.partial(ctx.fleet.reopen, line.line, line.status)
            reopened += await ctx.guard(reopen)
    return reopened


async def run_fleet_batch(args: argparse.Namespace, out: Output, requests: list[Request]) -> int:
    """Run this process's share of a fleet batch; return the exit code.

    Raises:
        InvalidParameterError: the Redis URL is malformed (exit 2, nothing sent).
        FleetUnavailableError: Redis is unreachable at start, or stayed so past
            ``REDIS_GIVE_UP`` during the run (exit 3).
    """
    url = _check_options(args)
    directory = Path(args.out)
    link = RedisLink(url, call_timeout=REDIS_CALL_TIMEOUT)
    try:
        await link.check()
        with lock_directory(directory):
            # The client paces with the batch's Redis: the fleet shares one rate budget.
            options = attrs.evolve(target_options(args), redis_url=url)
            async with open_target(options, notice=out.notice) as target:
                return await _run(args, out, requests, directory, target, link)
    finally:
        with anyio.CancelScope(shield=True):
            await link.aclose()


async def _run(
    args: argparse.Namespace,
    out: Output,
    requests: list[Request],
    directory: Path,
    target: Target,
    link: RedisLink,
) -> int:
    api_key = args.api_key or os.environ.get(ENV_API_KEY) or ""
    namespace = Namespace.for_team(target.client.base_url, api_key)
    fleet = RedisBatch(
        link,
        namespace,
        content_batch_id(requests),
        claim_timeout=args.claim_timeout,
        max_deliveries=args.max_deliveries,
    )
    by_line = {request.line: request for request in requests}
    estimates, refused = await estimate_requests(target, requests)
    if refused:
        return report_input_errors(out, InputFileError(args.prompts, refused))
    ctx = _Context(
        fleet,
        _RedisGuard(out, link.url),
        _pending_lines(fleet.batch_id, requests, estimates),
        str(await anyio.to_thread.run_sync(directory.resolve)),
    )
    lines, _ = await _fleet_view(ctx)
    total = sum(estimates.values())
    left = [line for line in lines if line.status == PENDING]
    left_cost = sum(line.estimate or 0.0 for line in left)
    out.notice(
        f"fleet batch {fleet.batch_id} on {link.url}, this process is worker "
        f"{fleet.consumer}: {len(lines)} line(s), {len(lines) - len(left)} started or done "
        f"in the fleet; estimated {money(total)} credits in all"
    )
    question = f"Join the fleet batch: {len(left)} line(s) left, about {money(left_cost)} credits?"
    ask = bool(left) and not args.yes
    if not approve_cost(out, total=total, max_cost=args.max_cost, question=question, ask=ask):
        return EXIT_COST
    await ctx.guard(lambda: fleet.seed(list(ctx.pending)))
    reopened = await _reopen_unfinished(ctx)
    if reopened:
        out.notice(f"{reopened} line(s) an earlier run left without an outcome are tried again")
    recorder = _FleetRecorder(ctx)
    progress = BatchProgress(
        (await _fleet_view(ctx))[0],
        out.progress_console,
        rate_wait=lambda: target.meter.waited,
        quiet=out.json_mode,
    )
    engine = Batch(
        target,
        recorder,
        directory,
        by_line,
        progress,
        concurrency=args.concurrency,
        wait_timeout=args.wait_timeout,
    )
    worker = _Worker(ctx, engine, recorder, progress, concurrency=args.concurrency)
    complete = False
    try:
        with progress:
            await worker.run()
        complete = True
    finally:
        # However the run ends, the manifest says what Redis knows (bounded: best effort
        # when interrupted).
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(None if complete else 2 * REDIS_CALL_TIMEOUT):
                    final, workers = await _fleet_view(ctx)
                manifest = await anyio.to_thread.run_sync(
                    write_fleet_manifest, directory, final, workers
                )
            except (FleetUnavailableError, TimeoutError):
                if complete:
                    raise
    return summarize(out, directory, manifest, final, mode="batch")
