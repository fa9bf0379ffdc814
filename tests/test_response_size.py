"""JSON answers above max_response_bytes are refused unread (issue 17 part 2)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import anyio
import pytest
from _canned_api import API_KEY, Answer, canned_api, client_for
from aiohttp import web

from aurous_async import AsyncAurous, ResponseTooLargeError
from aurous_async._config import DEFAULT_MAX_RESPONSE_BYTES

pytestmark = pytest.mark.anyio

TEAM = (Path(__file__).parent / "fixtures" / "team.json").read_bytes()
MIB = 1024 * 1024
#: The size of the answer the server tries to send (the 300 MB of the issue).
HUGE = 300 * MIB
#: What the server may have pushed into socket buffers before the client hung up.
SLACK = 32 * MIB


class Flood:
    """A handler streaming ``HUGE`` bytes of JSON padding, counting what it managed to
    write before the client hung up."""

    def __init__(self, *, announce: bool, size: int = HUGE) -> None:
        self.announce = announce
        self.size = size
        self.written = 0
        self.finished = anyio.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Aurous-Request-Id": "req_big"}
        )
        if self.announce:
            response.content_length = self.size
        chunk = b" " * (256 * 1024)
        try:
            await response.prepare(request)
            while self.written < self.size:
                await response.write(chunk[: self.size - self.written])
                self.written += min(len(chunk), self.size - self.written)
        except ConnectionError:
            pass  # the client hung up: what we wanted
        finally:
            self.finished.set()
        return response


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_json_answer_is_refused_unread_and_the_client_goes_on(
    announce: bool,
) -> None:
    """300 MB announced or chunked: refused at the cap, the connection dropped, the next
    call on the same client works."""
    async with canned_api() as (api, server), client_for(server, max_response_bytes=MIB) as client:
        flood = api.handler = Flood(announce=announce)
        with pytest.raises(ResponseTooLargeError) as info:
            await client.team.get()
        with anyio.fail_after(10):
            await flood.finished.wait()
        api.handler = None
        api.answer = Answer(200, {}, TEAM)
        team = await client.team.get()
    error = info.value
    assert (error.route, error.status, error.limit) == ("GET /v1/team", 200, MIB)
    assert error.size == (HUGE if announce else None)
    assert error.request_id == "req_big"
    assert "max_response_bytes=1048576" in str(error)
    assert flood.written < SLACK  # not read: the server could not push it all
    assert team.name == "Acme Studio"
    # The refused answer's connection was closed, not pooled: the next call opened another.
    assert api.requests[1].peer_port != api.requests[0].peer_port
    assert len(api.requests) == 2  # refused, not retried


async def test_the_default_cap_is_16_mib() -> None:
    """Without max_response_bytes, an answer announcing 16 MiB + 1 byte is refused."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.handler = Flood(announce=True, size=16 * MIB + 1)
        with pytest.raises(ResponseTooLargeError) as info:
            await client.balance.get()
    assert info.value.limit == DEFAULT_MAX_RESPONSE_BYTES == 16 * MIB


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_an_answer_at_the_cap_is_read(announce: bool) -> None:
    """A JSON answer of exactly max_response_bytes is read and decoded."""
    compact = json.dumps(json.loads(TEAM)).encode()
    padded = compact[:-1] + b" " * (4096 - len(compact)) + b"}"

    async def exact(request: web.Request) -> web.StreamResponse:
        if announce:
            return web.Response(body=padded, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(padded), 1000):
            await response.write(padded[start : start + 1000])
        return response

    async with (
        canned_api() as (api, server),
        client_for(server, max_response_bytes=4096) as client,
    ):
        api.handler = exact
        team = await client.team.get()
    assert len(padded) == 4096
    assert team.name == "Acme Studio"


async def test_a_compressed_answer_is_capped_at_its_decompressed_size() -> None:
    """A small gzip body that inflates past the cap is refused: no decompression bomb."""
    inflated = b"[" + b" " * (4 * MIB) + b"]"
    async with (
        canned_api() as (api, server),
        client_for(server, max_response_bytes=MIB) as client,
    ):
        api.answer = Answer(
            200,
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            gzip.compress(inflated),
        )
        with pytest.raises(ResponseTooLargeError) as info:
            await client.team.get()
    assert len(gzip.compress(inflated)) < MIB
    assert info.value.size is None


async def test_output_downloads_are_not_capped() -> None:
    """Output bytes are not JSON: a download larger than the cap is read whole."""
    image = b"\x89PNG" + b"\x00" * (2 * MIB)
    async with canned_api() as (api, server), client_for(server, max_response_bytes=MIB) as client:
        api.answer = Answer(200, {"Content-Type": "image/png"}, image)
        data = await client.images.download("img_01HXMQ7Z3K8Y2ABCDEFGHJKM")
    assert data == image


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_max_response_bytes_must_be_a_positive_integer(value: object) -> None:
    """A cap that is not a positive integer is refused when the client is made."""
    with pytest.raises(ValueError, match="max_response_bytes"):
        AsyncAurous(API_KEY, max_response_bytes=value)  # type: ignore[arg-type]
