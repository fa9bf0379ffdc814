"""Fetching output bytes (contract A4, §8.7): signed URLs, no key, no rate bucket.

Three ways out: ``fetch_output`` returns the bytes (small outputs), ``save_output``
streams them into a file atomically (``_saving``), ``OutputStream`` hands them over in
chunks as they arrive (piping to an HTTP response or object storage).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import APIConnectionError
from .._requester import Call, Requester
from .._saving import ResumableSink, SinkAbort, save_streamed
from ._base import Resource

__all__ = ["OutputStream", "fetch_output", "save_output"]


def is_signed(url: str) -> bool:
    """Whether ``url`` carries its own ``?token=`` and so needs no API key."""
    return "token" in parse_qs(urlsplit(url).query)


def output_call(
    url: str, *, route: str, timeout: float | None, headers: dict[str, str] | None = None
) -> Call:
    """The GET of output bytes: idempotent (every transient failure is retried),
    unmetered, keyless when the URL is signed."""
    return Call(
        method="GET",
        path=url,
        route=route,
        headers=headers or {},
        idempotent=True,
        authenticated=not is_signed(url),
        metered=False,
        expect_json=False,
        timeout=timeout,
    )


async def fetch_output(
    resource: Resource,
    url: str,
    *,
    route: str,
    timeout: float | None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET output bytes from a signed URL (no API key) or an API path (with the key)."""
    reply = await resource._send(output_call(url, route=route, timeout=timeout, headers=headers))
    return reply.response.body


async def save_output(
    resource: Resource,
    url: str,
    path: str | os.PathLike[str],
    *,
    route: str,
    timeout: float | None,
) -> anyio.Path:
    """Stream output bytes into ``path``: whole or absent, resumed from a partial."""
    call = output_call(url, route=route, timeout=timeout)
    return await save_streamed(resource._requester, call, path)


class OutputStream:
    """The bytes of one output, in chunks as they arrive, never held whole.

    Use it as ``async with client.videos.iter_bytes(video) as chunks: async for chunk
    in chunks: ...``. Leaving the block, early or on an error, closes the connection. A
    body cut short is resumed with ``Range`` where the server honours it (only the
    bytes not yet handed over follow); the call's ``timeout`` bounds the whole transfer.

    Raises (while iterating): as ``download``; ``APIConnectionError`` when a resumed
    answer is not the same output (the chunks already handed over cannot be taken back).
    """

    def __init__(self, requester: Requester, call: Call) -> None:
        self._requester = requester
        self._call = call
        self._task: asyncio.Task[None] | None = None
        self._receive: MemoryObjectReceiveStream[bytes] | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<OutputStream {self._call.route}>"

    async def __aenter__(self) -> OutputStream:
        if self._task is not None:
            raise RuntimeError("an OutputStream can be entered once")
        send, self._receive = anyio.create_memory_object_stream[bytes](0)
        self._task = asyncio.ensure_future(self._produce(send))
        return self

    def __aiter__(self) -> OutputStream:
        return self

    async def __anext__(self) -> bytes:
        if self._receive is None:
            raise RuntimeError("iterate an OutputStream inside its async with block")
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            pass
        error, self._error = self._error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._receive is not None:
            self._receive.close()
        if self._task is not None:
            self._task.cancel()
            # Waits for the producer to let go of its connection (also when the consumer
            # is being cancelled); never raises the producer's end.
            with anyio.CancelScope(shield=True):
                await asyncio.wait({self._task})

    async def _produce(self, send: MemoryObjectSendStream[bytes]) -> None:
        with send:
            try:
                await self._requester.send_to(self._call, _Forward(send))
            except SinkAbort as exc:
                self._error = exc.error
            except anyio.BrokenResourceError:
                pass  # the consumer left
            except Exception as exc:
                self._error = exc


class _Forward(ResumableSink):
    """Hands each chunk to the consumer; after a cut, takes only the 206 of the rest."""

    def __init__(self, send: MemoryObjectSendStream[bytes]) -> None:
        super().__init__()
        self._send = send

    async def receive(
        self, status: int, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> None:
        start = self.body_start(status, headers)
        # Only a 206 from where it broke continues the same bytes: a whole body may be
        # another rendering of the output, and what was handed over cannot be taken back.
        if self.offset and start != self.offset:
            raise SinkAbort(
                APIConnectionError(
                    f"{self.offset} bytes were handed over when the connection broke, and "
                    "the answer to the retry is not the rest of the same output"
                )
            )
        async for chunk in chunks:
            await self._send.send(chunk)
            self.offset += len(chunk)
