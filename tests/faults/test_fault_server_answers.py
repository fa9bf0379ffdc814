"""Whatever the server answers, an SDK call returns or raises an ``AurousError``
(issue 17 part 3).

A fake API (``aiohttp.web`` on 127.0.0.1) answers every request with the status, headers
and body hypothesis draws: near-valid models with one field broken, list envelopes,
arbitrary JSON, bytes that are not JSON, odd rate-limit, retry and encoding headers.
Several calls run against each answer: get, list, create, estimate and a wait. Each
call gets a fresh client, so one answer's rate-limit headers cannot stall the next call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _canned_api import Answer, canned_api, client_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurous_async import AsyncAurous, AurousError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FIXTURES = Path(__file__).parent.parent / "fixtures"
GENERATION: dict[str, Any] = json.loads((FIXTURES / "generation.json").read_text())
ESTIMATE: dict[str, Any] = json.loads((FIXTURES / "estimate.json").read_text())
JOB = "img_01HXMQ7Z3K8Y2ABCDEFGHJKM"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _broken(draw: st.DrawFn, model: dict[str, Any]) -> dict[str, Any]:
    """``model`` with one field dropped or replaced by any JSON value."""
    body = dict(model)
    field = draw(st.sampled_from(sorted(body)))
    if draw(st.booleans()):
        del body[field]
    else:
        body[field] = draw(json_values)
    return body


def _page(items: list[Any]) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False, "next_cursor": None}


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.just(_dumps(GENERATION)),
    _broken(GENERATION).map(_dumps),
    _broken(ESTIMATE).map(_dumps),
    st.lists(st.just(GENERATION) | _broken(GENERATION), max_size=3).map(_page).map(_dumps),
    _broken(_page([GENERATION])).map(_dumps),
    json_values.map(_dumps),
    st.binary(max_size=64),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
header_values = st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "gzip", "br", "application/json"]),
)
#: Headers the SDK reads; framing headers (Content-Length, Transfer-Encoding) are the
#: server's own.
header_names = st.sampled_from(
    [
        "Aurous-Request-Id",
        "Aurous-Version",
        "Aurous-Deprecated",
        "Sunset",
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Content-Type",
        "Content-Encoding",
        "Aurous-Idempotent-Replayed",
    ]
)
answers = st.builds(
    Answer,
    status=st.one_of(
        st.sampled_from([200, 201, 202, 204, 302, 400, 404, 409, 429, 500, 503]),
        st.integers(200, 599),
    ),
    headers=st.dictionaries(header_names, header_values, max_size=4)
    | st.dictionaries(header_names, header_values, max_size=4).map(
        lambda headers: {**headers, "Location": "/v1/elsewhere"}
    ),
    body=bodies,
)

Call = Callable[[AsyncAurous], Awaitable[object]]
CALLS: dict[str, Call] = {
    "get": lambda client: client.images.get(JOB),
    "list": lambda client: client.images.list(limit=5).collect(max_items=10),
    "create": lambda client: client.images.create(prompt="a lighthouse"),
    "estimate": lambda client: client.images.estimate(prompt="a lighthouse"),
    "wait": lambda client: client.wait(JOB, timeout=30.0),
    "team": lambda client: client.team.get(),
}


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(answer=answers)
async def test_any_answer_gives_a_result_or_an_aurous_error(answer: Answer) -> None:
    """No status, header or body makes a call raise anything but an AurousError."""
    async with canned_api() as (api, server):
        api.answer = answer
        for name, call in CALLS.items():
            async with client_for(server) as client:
                try:
                    await call(client)
                except AurousError:
                    pass
                except Exception as exc:  # pragma: no cover - the failure being hunted
                    raise AssertionError(f"{name} raised {exc!r} for {answer!r}") from exc
