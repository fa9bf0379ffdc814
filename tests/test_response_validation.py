"""A 2xx answer the SDK cannot read raises APIResponseValidationError (issue 17 part 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _canned_api import Answer, canned_api, client_for

from aurous_async import (
    APIConnectionError,
    APIResponseValidationError,
    AurousError,
    OutcomeUnknownError,
)

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
TEAM = json.loads((FIXTURES / "team.json").read_text())
GENERATION = json.loads((FIXTURES / "generation.json").read_text())
RID = {"Aurous-Request-Id": "req_canned"}


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


async def test_a_body_missing_a_required_field_names_route_path_and_request_id() -> None:
    """team.get on a body without ``id``: the decoder's wording, the route, $.id, the id."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, _json({k: v for k, v in TEAM.items() if k != "id"}))
        with pytest.raises(APIResponseValidationError) as info:
            await client.team.get()
    error = info.value
    assert isinstance(error, AurousError)
    assert (error.route, error.status, error.path) == ("GET /v1/team", 200, "$.id")
    assert error.request_id == "req_canned"
    assert "response does not fit Team: required field missing @ $.id" in str(error)
    assert "req_canned" in str(error)
    assert len(api.requests) == 1  # the same answer would come back: not retried


async def test_a_create_whose_answer_does_not_fit_carries_its_idempotency_key() -> None:
    """A create's unreadable 2xx names the key that replays it, and is not retried."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(201, RID, _json({**GENERATION, "status": 7}))
        with pytest.raises(APIResponseValidationError) as info:
            await client.images.create(prompt="a lighthouse", idempotency_key="key-1")
    assert not isinstance(info.value, OutcomeUnknownError)
    assert info.value.idempotency_key == "key-1"
    assert info.value.path == "$.status"
    assert [r.method for r in api.requests] == ["POST"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {"object": "list", "data": [GENERATION, {"status": "queued"}], "has_more": False},
            "$.data[1].id",
        ),
        ({"object": "list", "data": {"id": "x"}, "has_more": False}, "$.data"),
        ([GENERATION], "$"),
    ],
)
async def test_a_list_page_that_does_not_fit_names_the_item(body: object, path: str) -> None:
    """A bad item of a page is named by its index; a bad envelope by its field."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, _json(body))
        with pytest.raises(APIResponseValidationError) as info:
            await client.images.list().collect()
    assert info.value.route == "GET /v1/images"
    assert info.value.path == path


async def test_a_bare_list_that_is_not_an_array_is_typed() -> None:
    """loras.list on an object instead of the documented bare array."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, _json({"data": []}))
        with pytest.raises(APIResponseValidationError) as info:
            await client.loras.list().collect()
    assert (info.value.route, info.value.path) == ("GET /v1/loras", "$")


async def test_a_body_that_is_not_json_is_retried_then_typed() -> None:
    """Not JSON: retried as a lost answer, then APIResponseValidationError (no path)."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, b"<html>gateway</html>")
        with pytest.raises(APIResponseValidationError) as info:
            await client.balance.get()
    assert isinstance(info.value, APIConnectionError)
    assert info.value.path is None
    assert "not valid JSON" in str(info.value)
    assert len(api.requests) == 3  # FAST_RETRY: three attempts


async def test_a_deeply_nested_body_is_typed_not_a_recursion_error() -> None:
    """A 2xx nested past the parser's depth is an unreadable answer, not RecursionError."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, b"[" * 100_000 + b"]" * 100_000)
        with pytest.raises(APIResponseValidationError):
            await client.team.get()


async def test_a_wait_whose_polls_do_not_fit_fails_typed() -> None:
    """The poller counts unreadable answers as failures and ends the wait with one."""
    async with canned_api() as (api, server), client_for(server) as client:
        api.answer = Answer(200, RID, _json({**GENERATION, "created_at": "yesterday"}))
        with pytest.raises(APIResponseValidationError) as info:
            await client.wait("img_01HXMQ7Z3K8Y2ABCDEFGHJKM", timeout=600)
    assert info.value.path == "$.created_at"
