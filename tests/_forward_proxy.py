"""A minimal HTTP forward proxy on a loopback port, recording every request it handles.

It forwards absolute-form requests (``GET http://host:port/path``) with
``Connection: close``, so each proxied request arrives on a fresh connection and is
recorded, and tunnels ``CONNECT host:port``. It can demand Basic proxy credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import attrs

__all__ = ["ForwardProxy", "Seen", "forward_proxy"]

_HOP_BY_HOP = ("proxy-authorization", "proxy-connection", "connection", "keep-alive")


@attrs.frozen
class Seen:
    """One request as the proxy received it."""

    method: str
    target: str
    headers: dict[str, str]


class ForwardProxy:
    """The running proxy: ``url`` to point a client at, ``seen`` for what it handled."""

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.seen: list[Seen] = []
        self.url = ""
        self._expected: str | None = None
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self._expected = f"Basic {token}"
        self._writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ")
            headers = dict(line.split(": ", 1) for line in lines if line)
            self.seen.append(Seen(method, target, headers))
            given = {k.lower(): v for k, v in headers.items()}.get("proxy-authorization")
            if self._expected is not None and given != self._expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                assert parts.hostname is not None
                up_reader, upstream = await asyncio.open_connection(
                    parts.hostname, parts.port or 80
                )
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _HOP_BY_HOP]
                forwarded = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
                upstream.write(forwarded.encode("latin-1") + b"\r\n\r\n")
            self._writers.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    self._writers.discard(stream)
                    stream.close()
                    with contextlib.suppress(ConnectionError):
                        await stream.wait_closed()

    async def close_connections(self) -> None:
        for stream in list(self._writers):
            stream.close()
            with contextlib.suppress(ConnectionError):
                await stream.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until ``reader`` ends, then end ``writer``'s side too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def forward_proxy(credentials: tuple[str, str] | None = None) -> AsyncIterator[ForwardProxy]:
    """Run a ``ForwardProxy`` on 127.0.0.1 for the block; yields it with ``url`` set."""
    proxy = ForwardProxy(credentials)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)  # type: ignore[arg-type]
        try:
            await proxy.handle(reader, writer)
        finally:
            tasks.discard(task)  # type: ignore[arg-type]

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        server.close()
        await proxy.close_connections()
        if tasks:
            await asyncio.wait(set(tasks), timeout=5.0)
        await server.wait_closed()
