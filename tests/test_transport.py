"""The I/O seam: one request, one immutable response, low-level failures mapped once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest
from _sdk_helpers import serve
from aiohttp import web

from aurous_async._errors import APIConnectionError, APITimeoutError
from aurous_async._transport import Multipart, Part, Response, Transport

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def transport(**kwargs: float) -> AsyncIterator[Transport]:
    t = Transport(user_agent="aurous-async/test", **kwargs)  # type: ignore[arg-type]
    try:
        yield t
    finally:
        await t.aclose()


async def echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "query": [[k, v] for k, v in request.query.items()],
            "headers": dict(request.headers),
            "body": body.decode(errors="replace"),
            "content_type": request.content_type,
        },
        headers={"Aurous-Request-Id": "req_echo"},
    )


async def test_send_returns_an_immutable_response() -> None:
    """A response carries status, headers, body and the request id, and is frozen."""
    async with serve([("GET", "/v1/x", echo)]) as base, transport() as t:
        response = await t.send("GET", base + "/v1/x", headers={"X-Test": "1"})
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.request_id == "req_echo"
    assert response.headers["content-type"].startswith("application/json")
    seen = json.loads(response.body)
    assert seen["headers"]["X-Test"] == "1"
    assert seen["headers"]["User-Agent"] == "aurous-async/test"
    with pytest.raises(AttributeError):
        response.status = 500  # type: ignore[misc]


async def test_json_body_and_repeated_query_parameters() -> None:
    """JSON bodies are compact with a JSON content type; query pairs keep their order."""
    async with serve([("POST", "/v1/x", echo)]) as base, transport() as t:
        response = await t.send(
            "POST",
            base + "/v1/x",
            headers={},
            params=[("group_by[]", "status"), ("group_by[]", "type")],
            json_body={"prompt": "héllo", "count": 2},
        )
    seen = json.loads(response.body)
    assert seen["content_type"] == "application/json"
    assert json.loads(seen["body"]) == {"prompt": "héllo", "count": 2}
    assert seen["query"] == [["group_by[]", "status"], ["group_by[]", "type"]]


async def test_multipart_body_can_be_sent_twice() -> None:
    """A multipart body is rebuilt per send, so a retry can send it again."""

    async def form(request: web.Request) -> web.StreamResponse:
        data = await request.post()
        upload = data["file"]
        assert isinstance(upload, web.FileField)
        return web.json_response(
            {"purpose": data["purpose"], "size": len(upload.file.read()), "name": upload.filename}
        )

    body = Multipart(
        (
            Part("file", b"\x89PNG" + b"0" * 100, filename="a.png", content_type="image/png"),
            Part("purpose", "reference"),
        )
    )
    async with serve([("POST", "/v1/files", form)]) as base, transport() as t:
        first = await t.send("POST", base + "/v1/files", headers={}, content=body)
        second = await t.send("POST", base + "/v1/files", headers={}, content=body)
    assert json.loads(first.body) == json.loads(second.body)
    assert json.loads(first.body) == {"purpose": "reference", "size": 104, "name": "a.png"}


async def test_same_origin_redirect_keeps_credentials_and_records_history() -> None:
    """A same-origin 308 is followed with the key; its headers are kept in ``history``."""

    async def legacy(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("/v1/new", headers={"Aurous-Deprecated": "route"})

    routes = [("POST", "/v1/old", legacy), ("POST", "/v1/new", echo)]
    async with serve(routes) as base, transport() as t:
        response = await t.send(
            "POST", base + "/v1/old", headers={"X-Api-Key": "k"}, json_body={"a": 1}
        )
    seen = json.loads(response.body)
    assert seen["method"] == "POST"
    assert json.loads(seen["body"]) == {"a": 1}
    assert seen["headers"]["X-Api-Key"] == "k"
    assert response.url.endswith("/v1/new")
    assert [h.get("Aurous-Deprecated") for h in response.history] == ["route"]


async def test_cross_origin_redirect_drops_credentials() -> None:
    """A redirect to another origin never carries the API key along."""
    async with serve([("GET", "/bytes", echo)]) as storage:

        async def output(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(storage + "/bytes")

        async with serve([("GET", "/v1/images/x/output/0", output)]) as api, transport() as t:
            response = await t.send(
                "GET", api + "/v1/images/x/output/0", headers={"X-Api-Key": "secret-key"}
            )
    seen = json.loads(response.body)
    assert "X-Api-Key" not in seen["headers"]
    assert response.status == 200


async def test_see_other_becomes_get() -> None:
    """A 303 after a POST is followed with a GET and no body."""

    async def created(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/v1/y")

    routes = [("POST", "/v1/x", created), ("GET", "/v1/y", echo)]
    async with serve(routes) as base, transport() as t:
        response = await t.send("POST", base + "/v1/x", headers={}, json_body={"a": 1})
    assert json.loads(response.body)["method"] == "GET"


async def test_redirect_loop_is_a_connection_error() -> None:
    """Endless redirects end in ``APIConnectionError``."""

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/v1/loop")

    async with serve([("GET", "/v1/loop", loop)]) as base, transport() as t:
        with pytest.raises(APIConnectionError, match="too many redirects"):
            await t.send("GET", base + "/v1/loop", headers={})


async def test_refused_connection_was_not_sent() -> None:
    """A refused connection maps to ``APIConnectionError`` with ``maybe_sent=False``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with transport() as t:
        with pytest.raises(APIConnectionError) as info:
            await t.send("GET", f"http://127.0.0.1:{port}/v1/x", headers={"X-Api-Key": "k"})
    assert info.value.maybe_sent is False
    assert not isinstance(info.value, APITimeoutError)


async def test_dropped_connection_may_have_been_sent() -> None:
    """A connection cut before the answer maps to ``APIConnectionError(maybe_sent=True)``."""

    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async with serve([("POST", "/v1/x", drop)]) as base, transport() as t:
        with pytest.raises(APIConnectionError) as info:
            await t.send("POST", base + "/v1/x", headers={}, json_body={})
    assert info.value.maybe_sent is True


async def test_truncated_body_is_a_connection_error() -> None:
    """A body shorter than its Content-Length maps to ``APIConnectionError``."""

    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"half":')
        assert request.transport is not None
        request.transport.abort()
        return response

    async with serve([("GET", "/v1/x", truncated)]) as base, transport() as t:
        with pytest.raises(APIConnectionError):
            await t.send("GET", base + "/v1/x", headers={})


async def test_read_timeout_is_an_api_timeout() -> None:
    """A response slower than the read timeout maps to ``APITimeoutError``."""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.1)
        return web.Response()

    async with serve([("GET", "/v1/x", slow)]) as base, transport(read_timeout=0.02) as t:
        with pytest.raises(APITimeoutError) as info:
            await t.send("GET", base + "/v1/x", headers={})
    assert isinstance(info.value, TimeoutError)
    assert info.value.maybe_sent is True


async def _trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once, then a body chunk every 15 ms for 90 ms."""
    response = web.StreamResponse()
    response.content_length = 6
    await response.prepare(request)
    for _ in range(6):
        await asyncio.sleep(0.015)
        await response.write(b"x")
    return response


async def test_read_timeout_bounds_a_whole_api_response() -> None:
    """An API response whose body trickles in past the read timeout is a timeout."""
    async with serve([("GET", "/v1/x", _trickle)]) as base, transport(read_timeout=0.05) as t:
        with pytest.raises(APITimeoutError) as info:
            await t.send("GET", base + "/v1/x", headers={})
    assert info.value.maybe_sent is True


async def test_read_timeout_of_a_download_is_per_chunk() -> None:
    """A download keeps going as long as every chunk arrives within the read timeout."""
    async with serve([("GET", "/v1/x", _trickle)]) as base, transport(read_timeout=0.05) as t:
        response = await t.send("GET", base + "/v1/x", headers={}, download=True)
    assert response.body == b"xxxxxx"


async def test_cookies_set_by_a_response_are_not_sent_back() -> None:
    """A Set-Cookie from one response never reaches the next request."""

    async def set_cookie(request: web.Request) -> web.StreamResponse:
        response = web.json_response({"cookie": request.headers.get("Cookie")})
        response.set_cookie("session", "abc")
        return response

    async with serve([("GET", "/v1/x", set_cookie)]) as base, transport() as t:
        # By name: aiohttp's default jar already ignores cookies of IP-address hosts.
        url = base.replace("127.0.0.1", "localhost") + "/v1/x"
        await t.send("GET", url, headers={})
        second = await t.send("GET", url, headers={})
    assert json.loads(second.body) == {"cookie": None}


async def test_closed_transport_refuses_use_and_close_is_idempotent() -> None:
    """After ``aclose`` a transport raises instead of opening a new session."""
    t = Transport(user_agent="x")
    assert not t.closed
    await t.aclose()
    await t.aclose()
    assert t.closed
    with pytest.raises(RuntimeError, match="closed"):
        await t.send("GET", "http://127.0.0.1:9/", headers={})


async def test_error_text_never_contains_request_headers() -> None:
    """Mapped errors name the failure, not the headers that were sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with transport() as t:
        with pytest.raises(APIConnectionError) as info:
            await t.send("GET", f"http://127.0.0.1:{port}/v1/x", headers={"X-Api-Key": "sekrit"})
    assert "sekrit" not in str(info.value)
    assert "sekrit" not in repr(info.value)
