"""A lean HTTP/1.1 load generator: keep-alive connections on raw asyncio protocols.

An ``aiohttp`` client spends roughly as much CPU per request as an ``aiohttp.web`` server,
so on one core it cannot saturate a server on the other: it would measure itself. This
generator writes pre-built request bytes and reads ``Content-Length`` framed responses,
at a small fraction of that cost, so the server under test is the bottleneck.

Two modes:

- closed loop (``closed_loop``): ``workers`` connections, each sending its next request
  as soon as the previous answer arrives; measures capacity.
- open loop (``open_loop``): requests are *scheduled* at a fixed rate whatever the
  server does, and latency counts from the scheduled instant, so a server that falls
  behind shows it in p99 instead of silently slowing the generator down.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import attrs

#: One cycle of the mixed traffic, in order: what a polling SDK user sends per job.
MIX: tuple[str, ...] = (
    "create",
    "estimate",
    "get",
    "get",
    "get",
    "balance",
    "get",
    "get",
    "list",
    "get",
    "output",
)
CREATE_BODY = json.dumps(
    {"prompt": "a lighthouse at dusk, volumetric fog", "size": "2k_1_1"}, separators=(",", ":")
).encode()


class ProtocolError(Exception):
    """The server answered something this generator does not parse."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._need: int | None = None
        self._status = 0
        self._head_end = 0
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._try_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("connection closed by the server"))

    def _try_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        buf = self._buf
        if self._need is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            i = head.find(b"\r\ncontent-length:")
            if i < 0:
                waiter.set_exception(ProtocolError(head[:200].decode(errors="replace")))
                return
            stop = head.find(b"\r\n", i + 2)
            length = int(head[i + 17 : stop if stop >= 0 else len(head)])
            self._status = int(head[9:12])
            self._head_end = end + 4
            self._need = end + 4 + length
        if len(buf) < self._need:
            return
        body = bytes(buf[self._head_end : self._need])
        del buf[: self._need]
        self._need = None
        waiter.set_result((self._status, body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@attrs.define
class Traffic:
    """Builds the request bytes of the mix against one server, and learns ids as it goes."""

    host: str
    port: int
    api_key: str
    ids: list[str] = attrs.field(factory=list)
    outputs: list[str] = attrs.field(factory=list)

    @classmethod
    def for_url(cls, url: str, api_key: str) -> Traffic:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        return cls(parts.hostname, parts.port, api_key)

    def _head(self, method: str, path: str) -> str:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"X-Api-Key: {self.api_key}\r\nAccept: application/json\r\n"
        )

    def build(self, kind: str) -> bytes:
        if kind == "create":
            return (
                self._head("POST", "/v1/images")
                + f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(CREATE_BODY)}\r\n\r\n"
            ).encode() + CREATE_BODY
        if kind == "estimate":
            return (
                self._head("POST", "/v1/images/estimate")
                + f"Content-Type: application/json\r\nContent-Length: {len(CREATE_BODY)}\r\n\r\n"
            ).encode() + CREATE_BODY
        if kind == "get":
            path = f"/v1/images/{random.choice(self.ids)}"
        elif kind == "balance":
            path = "/v1/balance"
        elif kind == "list":
            path = "/v1/images?limit=20"
        elif kind == "output":
            path = random.choice(self.outputs)
        else:
            raise ValueError(kind)
        return (self._head("GET", path) + "\r\n").encode()

    def build_get(self, gid: str) -> bytes:
        return (self._head("GET", f"/v1/images/{gid}") + "\r\n").encode()

    def learn(self, kind: str, status: int, body: bytes) -> None:
        if kind == "create" and status < 300:
            self.ids.append(body.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode())


@attrs.frozen
class Run:
    """What one measured window saw, from the generator's side."""

    requests: int
    seconds: float
    errors: int
    throttled: int
    latencies: tuple[float, ...]
    client_cpu: float
    statuses: dict[int, int]
    first_error: str | None
    #: Open loop: answers that arrived within the scheduled window (``seconds``).
    in_window: int | None = None

    @property
    def rps(self) -> float:
        """Answers per second (open loop: those that arrived within the window)."""
        done = self.requests if self.in_window is None else self.in_window
        return done / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.throttled = 0
        self.first_error: str | None = None

    def ok(self, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] += 1
        if status == 429:
            self.throttled += 1
        elif status >= 400:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"HTTP {status}"

    def failed(self, exc: BaseException, latency: float) -> None:
        self.latencies.append(latency)
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"

    def result(self, seconds: float, cpu: float, in_window: int | None = None) -> Run:
        return Run(
            in_window=in_window,
            requests=len(self.latencies),
            seconds=seconds,
            errors=self.errors,
            throttled=self.throttled,
            latencies=tuple(self.latencies),
            client_cpu=cpu,
            statuses=dict(self.statuses),
            first_error=self.first_error,
        )


async def _connect(traffic: Traffic) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Connection, traffic.host, traffic.port)
    return protocol


async def prepare(traffic: Traffic, *, outputs: int = 16, real_outputs: bool = True) -> None:
    """Create a few generations; with ``real_outputs``, wait for them and learn output URLs.

    Output URLs are reused during the run, so the emulator's PNG cache stays warm: the
    mix measures routing, auth and token checks, not PNG encoding (reported separately).
    """
    conn = await _connect(traffic)
    try:
        for _ in range(outputs):
            status, body = await conn.request(traffic.build("create"))
            traffic.learn("create", status, body)
        if not traffic.ids:
            raise RuntimeError("the server created nothing")
        if not real_outputs:
            traffic.outputs = [f"/v1/images/{i}/output/0" for i in traffic.ids]
            return
        deadline = time.monotonic() + 30
        pending = list(traffic.ids)
        while pending and time.monotonic() < deadline:
            still = []
            for gid in pending:
                _, body = await conn.request(traffic.build_get(gid))
                data = json.loads(body)
                if data.get("status") == "succeeded":
                    url = urlsplit(data["output_urls"][0])
                    traffic.outputs.append(f"{url.path}?{url.query}")
                elif data.get("status") in ("queued", "pending", "processing"):
                    still.append(gid)
            pending = still
            if pending:
                await asyncio.sleep(0.05)
        if not traffic.outputs:
            raise RuntimeError("no generation succeeded during preparation")
    finally:
        conn.close()


async def closed_loop(traffic: Traffic, *, seconds: float, workers: int) -> Run:
    """``workers`` connections, each cycling through ``MIX`` back to back."""
    tally = _Tally()
    conns = [await _connect(traffic) for _ in range(workers)]
    deadline = time.perf_counter() + seconds

    async def worker(conn: _Connection, offset: int) -> None:
        step = offset
        while time.perf_counter() < deadline:
            kind = MIX[step % len(MIX)]
            step += 1
            start = time.perf_counter()
            try:
                if conn.closed:
                    conn = await _connect(traffic)
                status, body = await conn.request(traffic.build(kind))
            except (OSError, ProtocolError) as exc:
                tally.failed(exc, time.perf_counter() - start)
                continue
            tally.ok(status, time.perf_counter() - start)
            traffic.learn(kind, status, body)
        conn.close()

    cpu0, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(conns)))
    return tally.result(time.perf_counter() - started, time.process_time() - cpu0)


async def open_loop(
    traffic: Traffic, *, rate: float, seconds: float, max_connections: int = 512
) -> Run:
    """Schedule ``rate`` requests a second for ``seconds``; latency from the scheduled time."""
    loop = asyncio.get_running_loop()
    tally = _Tally()
    idle: list[_Connection] = []
    gate = asyncio.Semaphore(max_connections)
    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()

    finished: list[float] = []

    async def one(kind: str, scheduled: float) -> None:
        async with gate:
            conn: _Connection | None = None
            try:
                conn = idle.pop() if idle else await _connect(traffic)
                status, body = await conn.request(traffic.build(kind))
            except (OSError, ProtocolError) as exc:
                tally.failed(exc, loop.time() - scheduled)
                return
            now = loop.time()
            finished.append(now)
            tally.ok(status, now - scheduled)
            traffic.learn(kind, status, body)
            if not conn.closed:
                idle.append(conn)

    cpu0 = time.process_time()
    start = loop.time() + 0.01
    i = 0
    while i < total:
        now = loop.time()
        while i < total and start + i / rate <= now:
            task = loop.create_task(one(MIX[i % len(MIX)], start + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < total:
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
    if tasks:
        await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu0
    for conn in idle:
        conn.close()
    end = start + seconds
    return tally.result(seconds, cpu, in_window=sum(1 for t in finished if t <= end))
