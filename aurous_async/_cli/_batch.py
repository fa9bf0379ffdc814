"""The batch engine: estimate, submit under the rate governor, wait, download, journal.

Each line runs as its own task: create (at most ``concurrency`` at once; the client's
governor paces them to the team's rate limit), wait, download, record. A failed line is
recorded and never stops the others; only a key problem (401/403) stops the batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import anyio
import attrs

from .._errors import (
    APIConnectionError,
    APIStatusError,
    AurousError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)
from .._price_shape import price_shape
from ..models import TERMINAL_STATUSES, Estimate, Generation
from ._files import file_id, save_outputs, write_atomically
from ._inputs import InputError, Request, canonical
from ._journal import MANIFEST_NAME, REJECTED, UNKNOWN, Line
from ._output import error_text
from ._progress import BatchProgress
from ._target import Target
from ._waiting import wait_until_done

__all__ = ["Batch", "estimate_requests", "is_done", "missing_files", "write_manifest"]

#: Creates in flight at once; the governor decides when each is sent.
DEFAULT_CONCURRENCY = 32
_ESTIMATES_AT_ONCE = 8
#: Errors that mean the key cannot work at all: stop the batch instead of failing lines.
_FATAL = (AuthenticationError, PermissionDeniedError)


# -- estimates ---------------------------------------------------------------------------


def _price_shape(request: Request) -> str:
    # One estimate per price shape; a request whose shape cannot be decided is priced alone.
    shape = price_shape(request.body)
    return f"{request.kind} {shape}" if shape is not None else f"line {request.line}"


def _estimator(target: Target, request: Request) -> Callable[..., Awaitable[Estimate]]:
    if request.kind == "video":
        return target.client.videos.estimate
    return target.client.images.estimate


async def estimate_requests(
    target: Target, requests: Sequence[Request]
) -> tuple[dict[int, float], list[InputError]]:
    """Price every request: ``({line: credits}, [lines the API refused])``.

    Requests that differ only in price-free parameters share one estimate call; when
    a shared call is refused, each of its lines is priced alone so the refusal is
    reported against the lines it concerns.
    """
    groups: dict[str, list[Request]] = {}
    for request in requests:
        groups.setdefault(_price_shape(request), []).append(request)
    amounts: dict[int, float] = {}
    errors: list[InputError] = []
    slots = anyio.Semaphore(_ESTIMATES_AT_ONCE)

    async def price(members: list[Request], *, alone: bool) -> None:
        first = members[0]
        try:
            async with slots:
                estimate = await _estimator(target, first)(**first.params)
        except _FATAL:
            raise
        except APIStatusError as exc:
            if isinstance(exc, (RateLimitError, ServerError)):
                raise
            if alone or len(members) == 1:
                errors.append(InputError(first.line, f"refused by the API: {error_text(exc)}"))
                return
            async with anyio.create_task_group() as each:
                for member in members:
                    each.start_soon(price_alone, member)
            return
        for member in members:
            amounts[member.line] = estimate.estimated_cost.amount

    async def price_alone(member: Request) -> None:
        await price([member], alone=True)

    async def price_group(members: list[Request]) -> None:
        await price(members, alone=False)

    async with anyio.create_task_group() as tg:
        for members in groups.values():
            tg.start_soon(price_group, members)
    errors.sort(key=lambda e: e.line)
    return amounts, errors


# -- files -------------------------------------------------------------------------------


def missing_files(out: Path, line: Line) -> bool:
    """Whether a succeeded line lacks any of its recorded output files (blocking)."""
    return not line.files or not all((out / name).is_file() for name in line.files)


def is_done(out: Path, line: Line) -> bool:
    """Nothing is left to do for this line (blocking: checks files)."""
    if line.status == "succeeded":
        return not missing_files(out, line)
    return line.final


def write_manifest(
    out: Path, lines: Sequence[Line], extra: Mapping[int, Mapping[str, object]] | None = None
) -> Path:
    """Write ``DIR/manifest.jsonl`` (one record per line, in line order, with the fields
    ``extra`` holds for that line added), atomically."""
    added = extra or {}
    path = out / MANIFEST_NAME
    text = "".join(
        canonical({**line.manifest(), **added.get(line.line, {})}) + "\n" for line in lines
    )
    write_atomically(path, text.encode())
    return path


# -- the engine --------------------------------------------------------------------------


class LineRecorder(Protocol):
    """Where ``Batch`` commits each line's state: the journal, or a fleet batch's Redis."""

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
        """Commit a line's new state (``None`` keeps a field, except ``error``)."""
        ...


@attrs.define
class Batch:
    """Runs the lines of one batch to completion (or until cancelled).

    Args:
        target: the client and what it points at.
        journal: the batch's journal (or another ``LineRecorder``).
        out: the output directory.
        requests: the validated request of each line, by line number.
        progress: the live view, updated on every state change.
        concurrency: creates in flight at once.
        wait_timeout: seconds to wait for one generation (``None``: no limit).
    """

    target: Target
    journal: LineRecorder
    out: Path
    requests: Mapping[int, Request]
    progress: BatchProgress
    concurrency: int = DEFAULT_CONCURRENCY
    wait_timeout: float | None = None
    _slots: anyio.Semaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._slots = anyio.Semaphore(self.concurrency)

    async def run(self, lines: Sequence[Line]) -> None:
        """Finish every line given (callers pass only the lines not done yet)."""
        async with anyio.create_task_group() as outer:
            outer.start_soon(self.progress.tick)
            async with anyio.create_task_group() as work:
                for line in lines:
                    work.start_soon(self._line, line)
            outer.cancel_scope.cancel()

    async def run_line(self, line: Line) -> None:
        """Finish one line (a fleet batch runs each line as it claims it)."""
        await self._line(line)

    async def _record(self, line: Line, message: str | None = None, **changes: object) -> Line:
        status = changes.pop("status", line.status)
        updated = await self.journal.record(line.line, status=str(status), **changes)  # type: ignore[arg-type]
        self.progress.update(updated, message)
        return updated

    async def _line(self, line: Line) -> None:
        try:
            generation: Generation | str | None = line.generation_id
            if generation is None:
                generation = await self._submit(line)
                if generation is None:
                    return
                line = await self._record(
                    line,
                    status=str(generation.status),
                    generation_id=generation.id,
                    cost=_cost(generation),
                )
            if isinstance(generation, str) and line.final:
                # Ended in an earlier run; only its files are missing. One fetch gives
                # fresh signed output URLs.
                generation = await self.target.client.images.get(generation)
            if isinstance(generation, str) or generation.status not in TERMINAL_STATUSES:
                try:
                    generation = await wait_until_done(
                        self.target.client, generation, within=self.wait_timeout
                    )
                except WaitTimeoutError:
                    await self._record(
                        line,
                        f"line {line.line}: still {line.status} after {self.wait_timeout:g}s;"
                        " re-run to keep waiting",
                        error=f"still {line.status} after {self.wait_timeout:g}s",
                    )
                    return
            if generation.status != "succeeded":
                error = generation.error_message or f"generation {generation.status}"
                await self._record(
                    line,
                    f"line {line.line}: {generation.status} {generation.id}: {error}",
                    status=str(generation.status),
                    cost=_cost(generation),
                    error=error,
                )
                return
            line = await self._record(
                line, status="succeeded", cost=_cost(generation), files=[], error=None
            )
            files = await self._download(line, generation)
            named = file_id(generation.id)
            shown = (
                generation.id
                if named == generation.id
                else f"{generation.id!r} (not a plain id: files named {named})"
            )
            await self._record(
                line, f"line {line.line}: succeeded {shown} -> {', '.join(files)}", files=files
            )
        except _FATAL:
            raise
        except AurousError as exc:
            await self._record(line, f"line {line.line}: {error_text(exc)}", error=error_text(exc))

    async def _submit(self, line: Line) -> Generation | None:
        request = self.requests[line.line]
        client = self.target.client
        create: Callable[..., Awaitable[Generation]] = (
            client.videos.create if request.kind == "video" else client.images.create
        )
        async with self._slots:
            # The key was committed when the line entered the journal; this marks that a
            # create may now be on the wire.
            line = await self._record(line, status="submitting", error=None)
            try:
                with self.target.meter.measuring():
                    return await create(**request.params, idempotency_key=line.idempotency_key)
            except _FATAL:
                raise
            except APIConnectionError as exc:
                # The outcome is unknown: the next run resends the same key, safely.
                await self._record(
                    line,
                    f"line {line.line}: {error_text(exc)}",
                    status=UNKNOWN,
                    error=error_text(exc),
                )
            except APIStatusError as exc:
                await self._record(
                    line,
                    f"line {line.line}: refused: {error_text(exc)}",
                    status=REJECTED,
                    error=error_text(exc),
                )
            return None

    async def _download(self, line: Line, generation: Generation) -> list[str]:
        stem = f"{line.line:05d}_{file_id(generation.id)}"
        return await save_outputs(
            self.target.client, generation, self.out, stem, video=line.kind == "video"
        )


def _cost(generation: Generation) -> float | None:
    return None if generation.cost is None else generation.cost.amount
