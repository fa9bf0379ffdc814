"""Hostile JSON bodies: too deep, too large, non-finite or arbitrary, never a 500."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurous_async.testing import DOCUMENTED_BUCKETS, BucketSpec, Emulator, run_emulator
from aurous_async.testing._json_input import MAX_BYTES, MAX_DEPTH, JsonInputError, parse

pytestmark = pytest.mark.anyio

ROOMY = {name: BucketSpec(10**7, 10**7) for name in DOCUMENTED_BUCKETS}
JSON_ROUTES = [
    ("POST", "/v1/images"),
    ("POST", "/v1/images/estimate"),
    ("POST", "/v1/videos"),
    ("POST", "/v1/videos/estimate"),
    ("POST", "/v1/characters"),
    ("POST", "/v1/characters/uploads/init"),
    ("POST", "/v1/characters/uploads/classify"),
    ("POST", "/v1/webhook_endpoints"),
    ("POST", "/v1/images/img_nope/cancel"),
]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(time_scale=100.0, buckets=ROOMY) as emulator:
        yield emulator


def nested(depth: int, leaf: str = "{}") -> str:
    return "[" * depth + leaf + "]" * depth


def post(emu: Emulator, path: str, data: bytes | str, method: str = "POST") -> requests.Response:
    return requests.request(
        method,
        emu.base_url + path,
        data=data,
        headers={"X-Api-Key": emu.api_key, "Content-Type": "application/json"},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (nested(50_000), "deeper"),
        (nested(MAX_DEPTH + 1), "deeper"),
        ("[NaN]", "NaN"),
        ("[1e999]", "out of range"),
        ("[" + "9" * 5000 + "]", "out of range"),
        ("{", "not valid"),
        (" " * (MAX_BYTES + 1), "larger"),
    ],
)
def test_parse_refuses_hostile_input(raw: str, why: str) -> None:
    """Too deep, non-finite, broken or oversized JSON is refused with a reason."""
    with pytest.raises(JsonInputError, match=why):
        parse(raw.encode())


def test_parse_accepts_nesting_up_to_the_bound() -> None:
    """Nesting exactly at the bound still parses."""
    assert parse(nested(MAX_DEPTH - 1).encode()) == json.loads(nested(MAX_DEPTH - 1))


async def test_loras_nested_50000_deep_is_a_400_invalid_format(emu: Emulator) -> None:
    """The body of issue 20 is a 400 ``invalid_format``, not a 500."""
    body = '{"prompt": "p", "loras": ' + nested(50_000) + "}"
    response = await anyio.to_thread.run_sync(post, emu, "/v1/images", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_format"
    assert emu.generations() == []


async def test_an_oversized_body_is_a_400_before_it_is_read(emu: Emulator) -> None:
    """A JSON body over the size bound is refused with ``invalid_format``."""
    body = json.dumps({"prompt": "p" * (MAX_BYTES + 10)})
    response = await anyio.to_thread.run_sync(post, emu, "/v1/images", body)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_format")


async def test_a_deep_page_token_and_deep_file_metadata_are_400s(emu: Emulator) -> None:
    """JSON hidden in a page token or a multipart field goes through the same bounds."""
    token = base64.urlsafe_b64encode(nested(50_000).encode()).decode()

    def calls() -> tuple[int, int]:
        usage = requests.get(
            f"{emu.base_url}/v1/usage",
            params={"start_time": "2026-01-01T00:00:00Z", "page_token": token},
            headers={"X-Api-Key": emu.api_key},
            timeout=10,
        )
        files = requests.post(
            f"{emu.base_url}/v1/files",
            files={"file": ("a.png", b"x", "image/png")},
            data={"purpose": "reference", "metadata": nested(50_000)},
            headers={"X-Api-Key": emu.api_key},
            timeout=10,
        )
        return usage.status_code, files.status_code

    assert await anyio.to_thread.run_sync(calls) == (400, 400)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["prompt", "loras", "lora", "weight", "count", "name", "url", "x"])
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)
_DEEP = st.builds(
    lambda depth, open_, leaf: open_ * depth + leaf + ("]" if open_ == "[" else "}") * depth,
    st.integers(min_value=1, max_value=5000),
    st.sampled_from(["["]),
    st.sampled_from(["1", "{}", '"x"', "[]"]),
)
_BODIES = (
    _JSON.map(json.dumps)
    | _JSON.map(lambda value: json.dumps({"prompt": "p", "loras": value}))
    | _DEEP.map(lambda deep: '{"prompt": "p", "loras": ' + deep + "}")
    | _DEEP
    | st.text(max_size=60)
    | st.sampled_from(["[NaN]", '{"count": Infinity}', '{"seed": 1e400}', '{"seed": -1e400}'])
)


def _fuzz(emu: Emulator) -> list[str]:
    failures: list[str] = []
    with requests.Session() as session:

        @given(route=st.sampled_from(JSON_ROUTES), body=_BODIES)
        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(route: tuple[str, str], body: str) -> None:
            method, path = route
            response = session.request(
                method,
                emu.base_url + path,
                data=body.encode("utf-8", "surrogatepass"),
                headers={"X-Api-Key": emu.api_key, "Content-Type": "application/json"},
                timeout=10,
            )
            if response.status_code >= 500:
                failures.append(f"{method} {path} {body[:120]!r} -> {response.status_code}")
            else:
                envelope: Any = response.json()  # every answer is JSON
                assert isinstance(envelope, (dict, list))

        run()
    return failures


async def test_arbitrary_json_bodies_never_yield_a_500(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Generated JSON-ish and deeply nested bodies on every JSON route are all answered < 500."""
    caplog.set_level(logging.ERROR, logger="aurous_async.testing")
    failures = await anyio.to_thread.run_sync(_fuzz, emu)
    assert failures == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
