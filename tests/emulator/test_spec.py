"""``/api-spec.json`` against real emulator traffic: every operation, success and errors.

Each response the emulator gives is validated with openapi-core against the document it
serves (bodies, statuses and headers), so the spec cannot drift from the serializers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

import aiohttp
import anyio
import pytest
import requests
import schemathesis
import schemathesis.specs.openapi.checks as checks
import yarl
from hypothesis import HealthCheck, Phase, given, settings
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_spec_validator import validate
from werkzeug.datastructures import Headers, ImmutableMultiDict

from aurous_async.testing import DOCUMENTED_BUCKETS, BucketSpec, Emulator, Fault, run_emulator
from aurous_async.testing._imageinfo import make_png

pytestmark = pytest.mark.anyio

Json = Any
#: Before the legacy routes' sunset, so their 308s are live.
START = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
UNKNOWN_VERSION = {"Aurous-Version": "1999-01-01"}


class _Request:
    """The request half of an exchange, as openapi-core reads it."""

    def __init__(self, method: str, url: yarl.URL) -> None:
        self.method = method.lower()
        self.host_url = f"{url.scheme}://{url.host}:{url.port}"
        self.path = url.path
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(url.query.items())),
            header=Headers(),
            cookie=ImmutableMultiDict(),
        )
        self.body: bytes | None = None
        self.content_type = "application/json"


class _Response:
    """The response half of an exchange, as openapi-core reads it."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.data = data
        self.content_type = headers.get("Content-Type", "")


class Driver:
    """Sends requests to the emulator and validates every answer against its spec."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession, api: OpenAPI) -> None:
        self.emu = emu
        self.http = http
        self.api = api
        #: (method, path template) -> statuses seen.
        self.seen: dict[tuple[str, str], set[int]] = {}
        #: One successful request per operation: (method, path, kwargs), for error replays.
        self.samples: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}

    async def call(
        self,
        method: str,
        template: str,
        path: str | None = None,
        *,
        expect: int,
        key: str | None = "demo",
        **kwargs: Any,
    ) -> Json:
        """One request; asserts its status, validates it, returns the JSON body (or bytes)."""
        path = path or template
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["X-Api-Key"] = self.emu.api_key if key == "demo" else key
        async with self.http.request(
            method, path, headers=headers, allow_redirects=False, **kwargs
        ) as response:
            data = await response.read()
            assert response.status == expect, (method, path, response.status, data[:300])
            self.api.validate_response(
                _Request(method, response.url),
                _Response(response.status, response.headers, data),
            )
        self.seen.setdefault((method, template), set()).add(expect)
        if 200 <= expect < 400 and (method, template) not in self.samples:
            self.samples[(method, template)] = (
                method,
                path,
                {**kwargs, "headers": headers, "key": key},
            )
        if response.content_type == "application/json" and data:
            return json.loads(data)
        return data


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(time_scale=1.0, start_time=START) as emulator:
        yield emulator


@pytest.fixture
async def spec(emu: Emulator) -> dict[str, Any]:
    async with aiohttp.ClientSession(emu.base_url) as http, http.get("/api-spec.json") as r:
        document: dict[str, Any] = json.loads(await r.read())
        return document


@pytest.fixture
async def driver(emu: Emulator, spec: dict[str, Any]) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession(emu.base_url) as http:
        yield Driver(emu, http, OpenAPI.from_dict(spec))


def operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item}


async def test_the_spec_is_a_valid_openapi_document(spec: dict[str, Any]) -> None:
    """openapi-spec-validator accepts the served document."""
    validate(spec)


async def test_every_operation_documents_a_success_body_and_its_headers(
    spec: dict[str, Any],
) -> None:
    """Every success response has content (or is a redirect) and the request-id header."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            success = [s for s in operation["responses"] if s.startswith(("2", "3"))]
            assert success, (method, path)
            for status in success:
                response = operation["responses"][status]
                assert "Aurous-Request-Id" in response["headers"], (method, path)
                if status != "308" and path != "/storage/uploads/{upload_id}":  # empty body
                    assert response["content"], (method, path, status)


async def test_statuses_the_contract_names_are_documented(spec: dict[str, Any]) -> None:
    """402, 409, 410, 416, 422, 206 and 429 (with Retry-After) appear where they apply."""
    paths = spec["paths"]
    assert {"201", "402", "409", "429"} <= set(paths["/v1/images"]["post"]["responses"])
    video = paths["/v1/videos/{id}/output"]["get"]["responses"]
    assert {"200", "206", "410", "416", "422"} <= set(video)
    assert "402" in paths["/v1/characters/{character_id}/resynthesize"]["post"]["responses"]
    throttled = spec["components"]["responses"]["TooManyRequests"]["headers"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Reset"} <= set(throttled)
    balance = paths["/v1/balance"]["get"]["responses"]["200"]["headers"]
    assert {"X-RateLimit-Remaining", "Aurous-Version"} <= set(balance)


async def test_real_responses_of_every_operation_match_the_spec(
    driver: Driver, spec: dict[str, Any]
) -> None:
    """Every operation, driven for real to success and its main errors, matches the spec."""
    emu, call = driver.emu, driver.call
    # -- account, pricing, usage, LoRAs ------------------------------------------------
    await call("GET", "/v1/balance", expect=200)
    await call("GET", "/v1/team", expect=200)
    await call("GET", "/v1/pricing", expect=200)
    await call("GET", "/v1/usage/events", expect=200)
    await call("GET", "/v1/usage", params={"start_time": "2026-05-01T00:00:00Z"}, expect=200)
    await call("GET", "/v1/usage", expect=400)
    await call("GET", "/v1/loras", expect=200)
    await call("GET", "/v1/loras/{id}", "/v1/loras/golden-hour-photography", expect=200)
    await call("GET", "/v1/loras/{id}", "/v1/loras/lora_nope", expect=404)
    await call("GET", "/v1/video_loras/{id}", "/v1/video_loras/seedance-1-lite", expect=200)
    # -- generations -----------------------------------------------------------------
    image_body = {"prompt": "a lighthouse", "count": 2}
    await call("POST", "/v1/images/estimate", json=image_body, expect=200)
    await call("POST", "/v1/images/estimate", json={"prompt": ""}, expect=400)
    image = await call(
        "POST", "/v1/images", json=image_body, headers={"Idempotency-Key": "k-1"}, expect=201
    )
    await call(
        "POST", "/v1/images", json=image_body, headers={"Idempotency-Key": "k-1"}, expect=201
    )
    await call(
        "POST",
        "/v1/images",
        json={"prompt": "other"},
        headers={"Idempotency-Key": "k-1"},
        expect=409,
    )
    video_body = {"video_lora_id": "seedance-1-lite", "duration": 2}
    await call("POST", "/v1/videos/estimate", json=video_body, expect=200)
    video = await call("POST", "/v1/videos", json=video_body, expect=201)
    doomed = await call("POST", "/v1/images", json={"prompt": "cancel me"}, expect=201)
    await call("POST", "/v1/images/{id}/cancel", f"/v1/images/{doomed['id']}/cancel", expect=200)
    await call("GET", "/v1/images", params={"limit": 1}, expect=200)
    image_out = f"/v1/images/{image['id']}/output/0"
    await call("GET", "/v1/images/{id}/output/{n}", image_out, key=emu.api_key, expect=422)
    emu.advance(3600)
    image = await call("GET", "/v1/images/{id}", f"/v1/images/{image['id']}", expect=200)
    video = await call("GET", "/v1/images/{id}", f"/v1/images/{video['id']}", expect=200)
    await call("GET", "/v1/images/{id}", "/v1/images/img_nope", expect=404)
    await call("POST", "/v1/images/{id}/cancel", f"/v1/images/{image['id']}/cancel", expect=400)
    for url, template in (
        (image["output_urls"][1], "/v1/images/{id}/output/{n}"),
        (video["output_video_url"], "/v1/videos/{id}/output"),
    ):
        local = str(yarl.URL(url).relative())
        await call("GET", template, local, key=None, expect=200)
        await call("GET", template, local, key=None, headers={"Range": "bytes=4-"}, expect=206)
        await call(
            "GET", template, local, key=None, headers={"Range": "bytes=999999999-"}, expect=416
        )
    # -- files -------------------------------------------------------------------------
    form = aiohttp.FormData()
    form.add_field("file", make_png(32, 32, (1, 2, 3)), filename="a.png", content_type="image/png")
    form.add_field("purpose", "reference")
    stored = await call("POST", "/v1/files", data=form, expect=201)
    await call("GET", "/v1/files/{file_id}", f"/v1/files/{stored['id']}", expect=200)
    content = str(yarl.URL(stored["url"]).relative())
    await call("GET", "/storage/files/{file_id}", content, key=None, expect=200)
    await call(
        "GET",
        "/storage/files/{file_id}",
        content,
        key=None,
        headers={"Range": "bytes=-8"},
        expect=206,
    )
    await call("DELETE", "/v1/files/{file_id}", f"/v1/files/{stored['id']}", expect=200)
    await call("GET", "/v1/files/{file_id}", f"/v1/files/{stored['id']}", expect=404)
    # -- characters --------------------------------------------------------------------
    ticket_body = {"filename": "f.png", "extension": "png", "content_type": "image/png"}
    ticket = await call("POST", "/v1/characters/uploads/init", json=ticket_body, expect=201)
    upload = str(yarl.URL(ticket["upload_url"]).relative())
    await call(
        "PUT",
        "/storage/uploads/{upload_id}",
        upload,
        key=None,
        data=make_png(64, 64, (9, 9, 9)),
        headers=ticket["upload_headers"],
        expect=200,
    )
    await call("PUT", "/storage/uploads/{upload_id}", f"{upload}x", key=None, data=b"x", expect=403)
    classify = {"upload_id": ticket["upload_id"]}
    await call("POST", "/v1/characters/uploads/classify", json=classify, expect=200)
    uploaded = await call(
        "POST",
        "/v1/characters",
        json={"name": "Up", "upload_ids": [ticket["upload_id"]]},
        expect=201,
    )
    made = await call("POST", "/v1/characters", json={"name": "Syn", "generate": True}, expect=201)
    emu.advance(3600)
    one = f"/v1/characters/{made['id']}"
    made = await call("GET", "/v1/characters/{character_id}", one, expect=200)
    await call("GET", "/v1/characters", expect=200)
    await call("PATCH", "/v1/characters/{character_id}", one, json={"name": "Renamed"}, expect=200)
    await call("POST", "/v1/characters/{character_id}/save", f"{one}/save", expect=200)
    ref = str(yarl.URL(made["refs"][0]["url"]).relative())
    ref_template = "/storage/characters/{character_id}/{ref_id}.bin"
    await call("GET", ref_template, ref, key=None, expect=200)
    await call("GET", ref_template, ref, key=None, headers={"Range": "bytes=0-3"}, expect=206)
    regenerate = f"{one}/refs/regenerate"
    await call(
        "POST", "/v1/characters/{character_id}/refs/regenerate", regenerate,
        json={"pose": "front"}, expect=200,
    )  # fmt: skip
    emu.advance(3600)
    await call(
        "POST", "/v1/characters/{character_id}/resynthesize", f"{one}/resynthesize", json={},
        expect=200,
    )  # fmt: skip
    await call(
        "DELETE", "/v1/characters/{character_id}", f"/v1/characters/{uploaded['id']}", expect=200
    )
    await call(
        "GET", "/v1/characters/{character_id}", f"/v1/characters/{uploaded['id']}", expect=404
    )
    # -- webhook endpoints -------------------------------------------------------------
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["image.completed"]}
    endpoint = await call("POST", "/v1/webhook_endpoints", json=hook, expect=201)
    one_hook = f"/v1/webhook_endpoints/{endpoint['id']}"
    await call("GET", "/v1/webhook_endpoints/{id}", one_hook, expect=200)
    await call(
        "POST", "/v1/webhook_endpoints/{id}/rotate_secret", f"{one_hook}/rotate_secret", expect=200
    )
    await call(
        "POST", "/v1/webhook_endpoints/{id}/test", f"{one_hook}/test",
        json={"event_type": "image.completed"}, expect=200,
    )  # fmt: skip
    await call("DELETE", "/v1/webhook_endpoints/{id}", one_hook, expect=200)
    # -- legacy routes and the spec itself -----------------------------------------------
    await call("GET", "/v1/generations", key=None, expect=308)
    await call("POST", "/v1/generations", key=None, json={"prompt": "p"}, expect=308)
    await call(
        "GET", "/v1/generations/{id}", f"/v1/generations/{image['id']}", key=None, expect=308
    )
    await call("POST", "/v1/video-generations", key=None, json=video_body, expect=308)
    await call(
        "GET", "/v1/video-generations/{id}", f"/v1/video-generations/{video['id']}", key=None,
        expect=308,
    )  # fmt: skip
    await call("GET", "/api-spec.json", key=None, expect=200)
    # -- money and scope -----------------------------------------------------------------
    reader = emu.add_key(emu.team_id, "read")
    await call("POST", "/v1/images", json={"prompt": "p"}, key=reader, expect=403)
    emu.advance(3600)  # the resynthesis above is done: the character can be billed again
    emu.set_credits(emu.team_id, 0)
    await call("POST", "/v1/images", json={"prompt": "p"}, expect=402)
    await call("POST", "/v1/videos", json=video_body, expect=402)
    await call("POST", "/v1/characters/{character_id}/resynthesize", f"{one}/resynthesize",
               json={}, expect=402)  # fmt: skip
    emu.set_credits(emu.team_id, 1000)

    assert set(driver.samples) == operations(spec)
    await _replay_errors(driver, spec)


async def _replay_errors(driver: Driver, spec: dict[str, Any]) -> None:
    """Each operation's generic errors: bad version pin, 401, 429 and an injected 5xx."""
    emu = driver.emu
    for (method, template), (_, path, kwargs) in sorted(driver.samples.items()):
        operation = spec["paths"][template][method.lower()]
        documented = operation["responses"]
        key = kwargs.pop("key")
        headers = kwargs.pop("headers")
        sent = {k: v for k, v in kwargs.items() if k != "data"}  # a FormData is single-use
        plain = {**headers, **UNKNOWN_VERSION}
        plain.pop("X-Api-Key", None)
        await driver.call(method, template, path, key=key, headers=plain, expect=400, **sent)
        if "401" in documented:
            await driver.call(method, template, path, key=None, expect=401, **sent)
        if "429" in documented:
            emu.inject(Fault("rate_limit", match=f"{method} {path.split('?')[0]}", retry_after=7))
            await driver.call(method, template, path, key=key, expect=429, **sent)
        emu.inject(Fault("status", match=f"{method} {path.split('?')[0]}", status=503))
        await driver.call(method, template, path, key=key, expect=503, **sent)
        assert {"400", "503"} <= set(documented), (method, template)
    for (method, template), statuses in driver.seen.items():
        documented = set(spec["paths"][template][method.lower()]["responses"])
        assert {str(s) for s in statuses} <= documented, (method, template, statuses)


#: Examples per operation: about 44 operations, so ~350 requests in a few seconds.
FUZZ_EXAMPLES = 8
ROOMY = {name: BucketSpec(10**7, 10**7) for name in DOCUMENTED_BUCKETS}
CONFORMANCE = [
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
]


def _conformance(base_url: str, api_key: str) -> tuple[int, list[str]]:
    """Schemathesis-generated requests for every operation; each answer checked against
    the spec (blocking; called in a worker thread)."""
    calls, failures = 0, []
    with requests.Session() as session:
        raw = session.get(f"{base_url}/api-spec.json", timeout=10).json()
        for result in schemathesis.openapi.from_dict(raw).get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]

            @given(case=operation.as_strategy())
            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                nonlocal calls
                response = case.call(
                    base_url=base_url,
                    headers={"X-Api-Key": api_key},
                    session=session,
                    timeout=10,
                    # The legacy routes' 308 is the answer under test, not its target's.
                    allow_redirects=False,
                )
                calls += 1
                try:
                    case.validate_response(response, checks=CONFORMANCE)
                except Exception as exc:  # a failure group: keep its text, go on
                    failures.append(f"{case.method} {case.formatted_path}: {exc}"[:600])

            run()
    return calls, failures


async def test_fuzzed_traffic_conforms_to_the_spec() -> None:
    """Generated requests to every operation get answers whose status, headers and body
    the spec documents (legacy routes live: the clock is before their sunset)."""
    async with run_emulator(time_scale=100.0, buckets=ROOMY, start_time=START) as emu:
        calls, failures = await anyio.to_thread.run_sync(_conformance, emu.base_url, emu.api_key)
    assert failures == []
    assert calls >= 200
