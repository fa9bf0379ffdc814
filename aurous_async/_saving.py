"""Streamed output saves: the body goes to disk in chunks, the file appears only whole.

A save writes to a partial file beside the target, ``.<name>.<tag>.part``, its ``tag``
drawn from the output's path (generation id and output index), so a partial of another
output is never taken for this one. Once the body is complete the partial is fsynced and
renamed over the target (``os.replace``): the target is whole or absent, never cut short.

A save that fails on the network, or is cancelled, keeps the partial (only the bytes
known to be written). The next save of the same output to the same path, or the next
retry within one save, asks for the rest with ``Range`` and appends the 206 that
continues exactly there; a 206 that starts elsewhere or announces another size or ETag
is refused and the save starts over, and a 200 is written from the first byte. No byte
is ever appended twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import anyio
from multidict import CIMultiDict

from ._errors import APIConnectionError, APIStatusError
from ._requester import Call, Requester

__all__ = ["ResumableSink", "SinkAbort", "partial_path", "save_streamed"]

#: Bytes gathered before each write: a thread hop per MiB, not per network chunk.
FLUSH_BYTES = 1 << 20

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.part")


class SinkAbort(Exception):
    """Ends a streamed call from inside its sink with ``error``: past the transport's
    translation of network failures, and past the retries."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class ResumableSink:
    """What every streamed output shares: ``offset`` bytes taken so far, a ``Range`` for
    the rest on every later attempt, and the check that a 206 continues the same body.

    Attributes:
        offset: bytes of the output taken so far.
        size: the output's full size, once a 206 announced it.
        etag: the output's ``ETag``, once an answer carried one.
    """

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.size: int | None = None
        self.etag: str | None = None

    def request_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` plus ``Range`` (and ``If-Range``) for the bytes not yet taken."""
        out = CIMultiDict(headers)
        # Offsets count the stored bytes, not those of a compressed encoding.
        out["Accept-Encoding"] = "identity"
        if self.offset:
            out["Range"] = f"bytes={self.offset}-"
            if self.etag is not None:
                out["If-Range"] = self.etag
        return out

    def body_start(self, status: int, headers: Mapping[str, str]) -> int | None:
        """Where this answer's body starts in the output: 0 for a whole body, ``offset``
        for a 206 that continues the same output, ``None`` for any other 206."""
        etag = headers.get("ETag")
        if status != 206:
            # The size checked is a 206's total only: a body cut short may have announced
            # a length it never had.
            self.size, self.etag = None, etag
            return 0
        match = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
        if match is None or int(match[1]) != self.offset:
            return None
        size = None if match[3] == "*" else int(match[3])
        if (self.size is not None and size != self.size) or (
            self.etag is not None and etag != self.etag
        ):
            return None
        self.size, self.etag = size, etag
        return self.offset


class FileSink(ResumableSink):
    """Writes a body into an open partial file, ``FLUSH_BYTES`` at a time, in a thread."""

    def __init__(self, file: BinaryIO, offset: int) -> None:
        super().__init__(offset)
        self._file = file

    async def receive(
        self, status: int, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> None:
        """Write one body at the offset it starts at; what arrived is kept if it breaks."""
        start = self.body_start(status, headers)
        if start is None:
            self.offset, self.size, self.etag = 0, None, None
            raise APIConnectionError(
                "the 206 answer does not continue the bytes already saved (another "
                "range, size or ETag); starting over",
                maybe_sent=False,
            )
        self.offset = start
        await self._io(_rewind, self._file, start)
        pending: list[bytes] = []
        gathered = 0
        # One write in flight in a thread while the next MiB arrives: the disk and the
        # network overlap, and the event loop waits on neither.
        writing: asyncio.Future[int] | None = None
        try:
            async for chunk in chunks:
                pending.append(chunk)
                gathered += len(chunk)
                if gathered >= FLUSH_BYTES:
                    if writing is not None:
                        await self._written(asyncio.shield(writing))
                        writing = None  # counted; a failed or interrupted one stays
                    writing = self._start_write(pending)
                    gathered = 0
        finally:
            # Also for a cut body, or a cancellation: keep what arrived, for the resume.
            # After a failed write nothing more is written (it raises again here), so
            # the bytes counted in ``offset`` are always the file's first ones.
            with anyio.CancelScope(shield=True):
                if writing is not None:
                    await self._written(writing)
                if pending:
                    await self._written(self._start_write(pending))

    def _start_write(self, pending: list[bytes]) -> asyncio.Future[int]:
        chunks = pending.copy()  # written one by one: no joined copy of the MiB
        pending.clear()
        return asyncio.get_running_loop().run_in_executor(None, _write_all, self._file, chunks)

    async def _written(self, writing: Awaitable[int]) -> None:
        try:
            self.offset += await writing
        except OSError as exc:
            raise SinkAbort(exc) from exc

    @staticmethod
    async def _io(function: Callable[..., object], *args: object) -> None:
        try:
            await anyio.to_thread.run_sync(function, *args)
        except OSError as exc:
            raise SinkAbort(exc) from exc


def partial_path(target: Path, source: str) -> Path:
    """The partial file of ``source`` (an output URL or path) saved to ``target``."""
    tag = hashlib.sha256(urlsplit(source).path.encode()).hexdigest()[:12]
    return target.with_name(f".{target.name}.{tag}.part")


async def save_streamed(
    requester: Requester, call: Call, path: str | os.PathLike[str]
) -> anyio.Path:
    """Send ``call`` (an output GET) and stream its body into ``path`` atomically,
    resuming from a partial left by an earlier save of the same output.

    Raises:
        OSError: the partial could not be written, or not renamed into place.
        APIStatusError, APIConnectionError: as ``Requester.send``; a 4xx other than
            408 and 429 also removes the partial (the output will not be served).
    """
    target = Path(os.fspath(path))
    partial = partial_path(target, call.path)
    file, size = await anyio.to_thread.run_sync(_open_partial, partial)
    sink = FileSink(file, size)
    keep = True
    try:
        try:
            await _fetch(requester, call, sink)
        except APIStatusError as exc:
            keep = exc.status >= 500 or exc.status in (408, 429)
            raise
        except SinkAbort as exc:
            raise exc.error from None
        await anyio.to_thread.run_sync(_commit, file, partial, target)
    finally:
        # An empty partial (nothing arrived) is not worth keeping either.
        remove = None if keep and sink.offset else partial
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close, file, sink.offset, remove)
    return anyio.Path(target)


async def _fetch(requester: Requester, call: Call, sink: FileSink) -> None:
    """Fill the partial; after a 416 to a resume, the partial is either the whole output
    already (``Content-Range: bytes */<its size>``) or not a prefix of it: started over."""
    try:
        await requester.send_to(call, sink)
        return
    except APIStatusError as exc:
        if exc.status != 416 or not sink.offset:
            raise
        if _unsatisfied_size(exc) == sink.offset:
            return
    sink.offset, sink.size, sink.etag = 0, None, None
    await requester.send_to(call, sink)


def _open_partial(partial: Path) -> tuple[BinaryIO, int]:
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    file = os.fdopen(fd, "r+b")
    return file, file.seek(0, os.SEEK_END)


def _write_all(file: BinaryIO, chunks: list[bytes]) -> int:
    for chunk in chunks:
        file.write(chunk)  # a buffered file writes all of it, or raises
    return sum(map(len, chunks))


def _rewind(file: BinaryIO, offset: int) -> None:
    """Drop whatever lies past ``offset`` (a write cut short, a body started over)."""
    file.seek(offset)
    file.truncate()


def _commit(file: BinaryIO, partial: Path, target: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(partial, target)
    _remove_stale_partials(target)
    if os.name == "posix":  # make the rename itself durable
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _close(file: BinaryIO, offset: int, remove: Path | None) -> None:
    """Close the partial holding only the bytes known written; remove it if asked."""
    if not file.closed:
        try:
            file.flush()
            file.truncate(offset)
        finally:
            file.close()
    if remove is not None:
        remove.unlink(missing_ok=True)


def _remove_stale_partials(target: Path) -> None:
    """Partials of other outputs once saved to ``target`` (now replaced) go too."""
    with os.scandir(target.parent) as entries:
        for entry in entries:
            found = _PARTIAL.fullmatch(entry.name)
            if found is not None and found["name"] == target.name:
                Path(entry.path).unlink(missing_ok=True)


def _unsatisfied_size(error: APIStatusError) -> int | None:
    """The size a 416 announces (``Content-Range: bytes */N``)."""
    value = error.headers.get("Content-Range", "")
    return _int(value.rpartition("/")[2]) if value.startswith("bytes */") else None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
