"""The emulator's characters: upload tickets, both create flows, the status machine, money."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._characters import POSES, SYNTHESIZED_POSES
from aurous_async.testing._errors import ApiError

from ._cf_support import assert_golden_shape, jpeg, png, png_header, webp_lossless

pytestmark = pytest.mark.anyio

SYNTHESIS_MAX = 90.0
HOUR = 3600.0
Json = dict[str, Any]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def events(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Json]]:
    """Every ``character.*`` event the emulator publishes: (team_id, type, data)."""
    seen: list[tuple[str, str, Json]] = []
    hub = emu.state.webhooks
    publish = hub.publish

    def record(team_id: str, event_type: str, data: Json) -> None:
        if event_type.startswith("character."):
            seen.append((team_id, event_type, data))
        publish(team_id, event_type, data)

    monkeypatch.setattr(hub, "publish", record)
    return seen


def key(secret: str, **extra: str) -> dict[str, str]:
    return {"X-Api-Key": secret, **extra}


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str, str | None]:
    error = (await response.json())["error"]
    return response.status, error["code"], error["param"]


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    secret: str,
    body: Json | None = None,
    status: int = 200,
    **headers: str,
) -> Json:
    async with http.request(method, path, json=body, headers=key(secret, **headers)) as response:
        assert response.status == status, await response.text()
        result: Json = await response.json()
        return result


async def fails(
    http: aiohttp.ClientSession, method: str, path: str, secret: str, body: Json | None = None
) -> tuple[int, str, str | None]:
    async with http.request(method, path, json=body, headers=key(secret)) as response:
        return await error_of(response)


async def init(
    http: aiohttp.ClientSession,
    secret: str,
    filename: str = "ref.png",
    extension: str = "png",
    content_type: str = "image/png",
) -> Json:
    body = {"filename": filename, "extension": extension, "content_type": content_type}
    return await call(http, "POST", "/v1/characters/uploads/init", secret, body, 201)


async def put(
    anonymous: aiohttp.ClientSession, ticket: Json, data: bytes, content_type: str | None = None
) -> aiohttp.ClientResponse:
    headers = dict(ticket["upload_headers"])
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with anonymous.put(ticket["upload_url"], data=data, headers=headers) as response:
        await response.read()
        return response


async def uploaded(
    http: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    secret: str,
    data: bytes | None = None,
    filename: str = "ref.png",
) -> str:
    ticket = await init(http, secret, filename)
    response = await put(anonymous, ticket, png() if data is None else data)
    assert response.status == 200
    return str(ticket["upload_id"])


async def synthesize(http: aiohttp.ClientSession, secret: str, **fields: object) -> Json:
    body: Json = {"name": "Aurora", "generate": True, **fields}
    return await call(http, "POST", "/v1/characters", secret, body, 201)


async def balance(http: aiohttp.ClientSession, secret: str) -> Json:
    return await call(http, "GET", "/v1/balance", secret)


def ledger_agrees(emu: Emulator, team_id: str) -> bool:
    team = emu.state.teams[team_id]
    rows = emu.state.billing.rows.get(team_id, [])
    return sum((row.signed() for row in rows), Decimal(0)) == team.available


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- upload tickets ----------------------------------------------------------------------
async def test_init_answers_201_with_a_signed_15_minute_put_url(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """uploads/init mints an upl_ ticket whose PUT URL and expires_at end in 15 minutes."""
    before = emu.clock.time()
    ticket = await init(http, emu.api_key, "front.jpg", "jpg", "image/jpeg")
    assert emu.requests[-1].bucket == "characters_post"
    assert ticket["upload_id"].startswith("upl_")
    assert ticket["upload_headers"] == {"Content-Type": "image/jpeg"}
    assert "token=" in ticket["upload_url"]
    assert before + 15 * 60 - 2 <= ts(ticket["expires_at"]) <= emu.clock.time() + 15 * 60


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"extension": "png", "content_type": "image/png"}, ("missing_field", "filename")),
        (
            {"filename": "x" * 121, "extension": "png", "content_type": "image/png"},
            ("value_out_of_range", "filename"),
        ),
        (
            {"filename": "", "extension": "png", "content_type": "image/png"},
            ("value_out_of_range", "filename"),
        ),
        ({"filename": "a", "content_type": "image/png"}, ("missing_field", "extension")),
        (
            {"filename": "a", "extension": "gif", "content_type": "image/gif"},
            ("invalid_format", "extension"),
        ),
        ({"filename": "a", "extension": "png"}, ("missing_field", "content_type")),
        (
            {"filename": "a", "extension": "png", "content_type": "image/gif"},
            ("invalid_format", "content_type"),
        ),
        (
            {"filename": "a", "extension": "jpg", "content_type": "image/png"},
            ("parameter_invalid_combination", "content_type"),
        ),
        (
            {"filename": "a", "extension": "webp", "content_type": "image/jpeg"},
            ("parameter_invalid_combination", "content_type"),
        ),
        (
            {"filename": "a", "extension": "png", "content_type": "image/png", "size": 1},
            ("invalid_format", "size"),
        ),
    ],
)
async def test_init_validates_filename_extension_and_content_type(
    emu: Emulator, http: aiohttp.ClientSession, body: Json, expected: tuple[str, str]
) -> None:
    """Bad init bodies are 400s naming the field; extension and content_type must agree."""
    path = "/v1/characters/uploads/init"
    assert await fails(http, "POST", path, emu.api_key, body) == (400, *expected)


@pytest.mark.parametrize(
    ("extension", "content_type", "data"),
    [
        ("jpg", "image/jpeg", jpeg()),
        ("jpeg", "image/jpeg", jpeg()),
        ("png", "image/png", png()),
        ("webp", "image/webp", webp_lossless()),
    ],
)
async def test_put_stores_each_documented_type(
    emu: Emulator,
    http: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    extension: str,
    content_type: str,
    data: bytes,
) -> None:
    """The signed PUT takes no API key and accepts bytes that match the ticket's type."""
    ticket = await init(http, emu.api_key, f"a.{extension}", extension, content_type)
    response = await put(anonymous, ticket, data)
    assert response.status == 200
    assert emu.requests[-1].bucket is None
    body = {"upload_id": ticket["upload_id"]}
    await call(http, "POST", "/v1/characters/uploads/classify", emu.api_key, body)


async def test_put_checks_signature_content_type_and_real_bytes(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """Bad signatures are 403 upload_invalid; wrong header or bytes are 400 invalid_format."""
    ticket = await init(http, emu.api_key)
    url = ticket["upload_url"]
    headers = ticket["upload_headers"]
    for bad_url in (url.split("?")[0], url[:-2] + ("AA" if not url.endswith("AA") else "BB")):
        async with anonymous.put(bad_url, data=png(), headers=headers) as response:
            assert await error_of(response) == (403, "upload_invalid", None)
    response = await put(anonymous, ticket, png(), content_type="image/jpeg")
    assert response.status == 400
    cases = [
        (jpeg(), ("invalid_format", "body")),
        (b"GIF89a\x01\x00", ("invalid_format", "body")),
        (b"", ("invalid_format", "body")),
        (png_header(4097, 2), ("value_out_of_range", "body")),
    ]
    for data, expected in cases:
        async with anonymous.put(url, data=data, headers=headers) as response:
            assert await error_of(response) == (400, *expected)
    async with anonymous.put(url, data=png(), headers={"Content-Type": "image/jpeg"}) as response:
        assert await error_of(response) == (400, "invalid_format", "Content-Type")


async def test_put_limits_size_and_refuses_consumed_tickets(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """A PUT over 10 MB is 400 value_out_of_range; a consumed ticket is 400 upload_invalid."""
    ticket = await init(http, emu.api_key)
    big = png().ljust(10 * 1024 * 1024 + 1, b"\x00")
    async with anonymous.put(
        ticket["upload_url"], data=io.BytesIO(big), headers=ticket["upload_headers"]
    ) as response:
        assert await error_of(response) == (400, "value_out_of_range", "body")
    assert (await put(anonymous, ticket, png())).status == 200
    body = {"name": "A", "upload_ids": [ticket["upload_id"]]}
    await call(http, "POST", "/v1/characters", emu.api_key, body, 201)
    async with anonymous.put(
        ticket["upload_url"], data=png(), headers=ticket["upload_headers"]
    ) as response:
        assert await error_of(response) == (400, "upload_invalid", None)


async def test_create_with_a_broken_body_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Invalid JSON on create is 400 invalid_format, metered as characters_post (60)."""
    headers = key(emu.api_key, **{"Content-Type": "application/json"})
    async with http.post("/v1/characters", data=b"{not json", headers=headers) as response:
        assert await error_of(response) == (400, "invalid_format", None)
        assert response.headers["X-RateLimit-Limit"] == "60"
    with pytest.raises(ValueError, match="status"):
        emu.state.characters.force_next_outcome("succeeded")


async def test_upload_url_lives_15_minutes_and_the_ticket_24_hours(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """After 15 min the PUT is refused; an uploaded ticket stays usable until 24 h."""
    late = await init(http, emu.api_key)
    upload_id = await uploaded(http, anonymous, emu.api_key)
    emu.advance(15 * 60)
    response = await put(anonymous, late, png())
    assert response.status == 403
    classify = {"upload_id": upload_id}
    path = "/v1/characters/uploads/classify"
    await call(http, "POST", path, emu.api_key, classify)
    emu.advance(24 * HOUR - 15 * 60 - 1)
    await call(http, "POST", path, emu.api_key, classify)
    emu.advance(1)
    assert await fails(http, "POST", path, emu.api_key, classify) == (
        400,
        "upload_invalid",
        "upload_id",
    )
    body = {"name": "Late", "upload_ids": [upload_id]}
    assert await fails(http, "POST", "/v1/characters", emu.api_key, body) == (
        400,
        "upload_invalid",
        "upload_ids",
    )


async def test_classify_is_deterministic(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """A pose in the file name wins; otherwise the same bytes always give the same answer."""
    path = "/v1/characters/uploads/classify"
    named = await uploaded(http, anonymous, emu.api_key, filename="Side-view_02.png")
    result = await call(http, "POST", path, emu.api_key, {"upload_id": named})
    assert result == {"upload_id": named, "pose": "side", "confidence": 0.95}
    assert emu.requests[-1].bucket == "characters_post"
    answers = []
    for _ in range(2):
        upload_id = await uploaded(http, anonymous, emu.api_key, png(9, 9), "img_0001.png")
        answer = await call(http, "POST", path, emu.api_key, {"upload_id": upload_id})
        assert answer["pose"] in POSES
        assert 0.0 <= answer["confidence"] <= 1.0
        answers.append((answer["pose"], answer["confidence"]))
    assert answers[0] == answers[1]


async def test_classify_errors(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """Unknown, not uploaded and consumed ids are 400 upload_invalid; another team's 404."""
    path = "/v1/characters/uploads/classify"
    empty = await init(http, emu.api_key)
    other = emu.add_team()
    foreign = await uploaded(http, anonymous, other.api_key)
    used = await uploaded(http, anonymous, emu.api_key)
    await call(
        http, "POST", "/v1/characters", emu.api_key, {"name": "A", "upload_ids": [used]}, 201
    )
    cases = [
        ({"upload_id": "upl_01UNKNOWN"}, (400, "upload_invalid", "upload_id")),
        ({"upload_id": empty["upload_id"]}, (400, "upload_invalid", "upload_id")),
        ({"upload_id": used}, (400, "upload_invalid", "upload_id")),
        ({"upload_id": foreign}, (404, "resource_not_found", "upload_id")),
        ({}, (400, "missing_field", "upload_id")),
    ]
    for body, expected in cases:
        assert await fails(http, "POST", path, emu.api_key, body) == expected


# -- create -------------------------------------------------------------------------------
async def test_upload_flow_is_ready_at_once_and_consumes_its_tickets(
    emu: Emulator,
    http: aiohttp.ClientSession,
    anonymous: aiohttp.ClientSession,
    events: list[tuple[str, str, Json]],
) -> None:
    """201 ready with one ref per upload (classified pose, else other), free, no webhook."""
    front_bytes = jpeg(30, 40)
    ticket = await init(http, emu.api_key, "front.jpg", "jpg", "image/jpeg")
    assert (await put(anonymous, ticket, front_bytes)).status == 200
    front = str(ticket["upload_id"])
    await call(http, "POST", "/v1/characters/uploads/classify", emu.api_key, {"upload_id": front})
    unlabelled = await uploaded(http, anonymous, emu.api_key, filename="back.png")
    before = await balance(http, emu.api_key)
    attributes = {"gender": "female", "age": 28, "eye_color": "brown"}
    body = {
        "name": "Aurora the Adventurer",
        "generate": False,
        "upload_ids": [unlabelled, front],
        "attributes": attributes,
        "client_reference_id": "crm-42",
    }
    created = await call(http, "POST", "/v1/characters", emu.api_key, body, 201)
    assert emu.requests[-1].bucket == "characters_post"
    assert created["id"].startswith("char_")
    assert created["object"] == "character"
    assert (created["status"], created["name"]) == ("ready", "Aurora the Adventurer")
    assert created["attributes"] == attributes
    assert created["client_reference_id"] == "crm-42"
    assert created["aurous_version"] == "2026-05-15"
    assert created["error_message"] is None
    assert [ref["pose"] for ref in created["refs"]] == ["front", "other"]
    async with anonymous.get(created["refs"][0]["url"]) as image:
        assert image.status == 200
        assert image.content_type == "image/jpeg"
        assert await image.read() == front_bytes
    assert await balance(http, emu.api_key) == before
    assert events == []
    again = {"name": "Twice", "upload_ids": [front]}
    assert await fails(http, "POST", "/v1/characters", emu.api_key, again) == (
        400,
        "upload_invalid",
        "upload_ids",
    )


async def test_upload_flow_checks_every_ticket_before_consuming_any(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """A bad id in the list leaves the good tickets unconsumed; duplicates are refused."""
    good = await uploaded(http, anonymous, emu.api_key)
    other = emu.add_team()
    foreign = await uploaded(http, anonymous, other.api_key)
    empty = await init(http, emu.api_key)
    cases = [
        ([good, "upl_01NOPE"], (400, "upload_invalid", "upload_ids")),
        ([good, empty["upload_id"]], (400, "upload_invalid", "upload_ids")),
        ([good, foreign], (404, "resource_not_found", "upload_ids")),
        ([good, good], (400, "upload_invalid", "upload_ids")),
    ]
    for ids, expected in cases:
        body = {"name": "A", "upload_ids": ids}
        assert await fails(http, "POST", "/v1/characters", emu.api_key, body) == expected
    body = {"name": "A", "upload_ids": [good]}
    await call(http, "POST", "/v1/characters", emu.api_key, body, 201)


SYNTH: Json = {"name": "A", "generate": True}


def attrs_(**attributes: object) -> Json:
    return {**SYNTH, "attributes": attributes}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**SYNTH, "upload_ids": ["upl_1"]}, ("parameter_invalid_combination", "generate")),
        ({"name": "A"}, ("parameter_invalid_combination", "upload_ids")),
        ({"name": "A", "generate": False}, ("parameter_invalid_combination", "upload_ids")),
        ({"name": "A", "upload_ids": []}, ("value_out_of_range", "upload_ids")),
        (
            {"name": "A", "upload_ids": [f"upl_{i}" for i in range(7)]},
            ("value_out_of_range", "upload_ids"),
        ),
        ({"name": "A", "upload_ids": [1]}, ("invalid_format", "upload_ids")),
        ({"name": "A", "upload_ids": "upl_1"}, ("invalid_format", "upload_ids")),
        ({"generate": True}, ("missing_field", "name")),
        ({**SYNTH, "name": "x" * 121}, ("value_out_of_range", "name")),
        ({**SYNTH, "name": "   "}, ("value_out_of_range", "name")),
        ({"name": "A", "generate": "yes"}, ("invalid_format", "generate")),
        (attrs_(eye_colour="x"), ("invalid_request", "attributes.eye_colour")),
        (attrs_(age="28"), ("invalid_format", "attributes.age")),
        (attrs_(age=151), ("value_out_of_range", "attributes.age")),
        (attrs_(gender=1), ("invalid_format", "attributes.gender")),
        (
            attrs_(additional_details="x" * 1001),
            ("value_out_of_range", "attributes.additional_details"),
        ),
        ({**SYNTH, "attributes": ["female"]}, ("invalid_format", "attributes")),
        (
            {**SYNTH, "client_reference_id": "x" * 257},
            ("value_out_of_range", "client_reference_id"),
        ),
        ({**SYNTH, "style": "anime"}, ("invalid_format", "style")),
    ],
)
async def test_create_validation(
    emu: Emulator, http: aiohttp.ClientSession, body: Json, expected: tuple[str, str]
) -> None:
    """Each invalid create body is a 400 with its documented code and param."""
    assert await fails(http, "POST", "/v1/characters", emu.api_key, body) == (400, *expected)


async def test_synthesize_flow_holds_then_charges_four_generations(
    emu: Emulator, http: aiohttp.ClientSession, events: list[tuple[str, str, Json]]
) -> None:
    """201 synthesizing with 4 credits held; 30-90 s later ready, charged, with one webhook."""
    before = await balance(http, emu.api_key)
    created = await synthesize(
        http, emu.api_key, attributes={"hair_color": "black"}, client_reference_id="ref-1"
    )
    assert emu.requests[-1].bucket == "characters_synthesize"
    assert (created["status"], created["refs"]) == ("synthesizing", [])
    held = await balance(http, emu.api_key)
    assert held["held_credits"] == before["held_credits"] + 4
    assert held["available_credits"] == before["available_credits"] - 4
    emu.advance(29)
    path = f"/v1/characters/{created['id']}"
    assert (await call(http, "GET", path, emu.api_key))["status"] == "synthesizing"
    emu.advance(SYNTHESIS_MAX - 29)
    ready = await call(http, "GET", path, emu.api_key)
    assert emu.requests[-1].bucket == "characters_get"
    assert ready["status"] == "ready"
    assert [ref["pose"] for ref in ready["refs"]] == list(SYNTHESIZED_POSES)
    after = await balance(http, emu.api_key)
    assert after["credits"] == before["credits"] - 4
    assert after["held_credits"] == before["held_credits"]
    assert ledger_agrees(emu, emu.team_id)
    assert [(team, kind) for team, kind, _ in events] == [(emu.team_id, "character.completed")]
    payload = events[0][2]
    assert (payload["id"], payload["status"], payload["client_reference_id"]) == (
        created["id"],
        "ready",
        "ref-1",
    )
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(ready["refs"][0]["url"]) as image,
    ):
        assert image.content_type == "image/png"
        assert (await image.read()).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("how", ["blocked-term", "forced"])
async def test_failed_synthesis_releases_the_hold(
    emu: Emulator, http: aiohttp.ClientSession, events: list[tuple[str, str, Json]], how: str
) -> None:
    """A synthesis that fails ends failed with an error_message, refunds, and fires failed."""
    before = await balance(http, emu.api_key)
    if how == "forced":
        emu.state.characters.force_next_outcome("failed", "provider_timeout")
        created = await synthesize(http, emu.api_key)
        expected_message = "provider_timeout"
    else:
        details = {"additional_details": "holds an aurous-blocked-test-word sign"}
        created = await synthesize(http, emu.api_key, attributes=details)
        expected_message = "content_policy_violation"
    emu.advance(SYNTHESIS_MAX)
    failed = await call(http, "GET", f"/v1/characters/{created['id']}", emu.api_key)
    assert (failed["status"], failed["error_message"]) == ("failed", expected_message)
    assert await balance(http, emu.api_key) == before
    assert ledger_agrees(emu, emu.team_id)
    assert [kind for _, kind, _ in events] == ["character.failed"]
    assert events[0][2]["error_message"] == expected_message


async def test_synthesis_needs_available_credits(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Below 4 available credits the synthesize flow is 402 insufficient_credits, no row."""
    emu.set_credits(emu.team_id, 3.5)
    body = {"name": "A", "generate": True}
    assert await fails(http, "POST", "/v1/characters", emu.api_key, body) == (
        402,
        "insufficient_credits",
        None,
    )
    assert (await call(http, "GET", "/v1/characters", emu.api_key))["data"] == []


async def test_delete_during_synthesis_cancels_and_refunds(
    emu: Emulator, http: aiohttp.ClientSession, events: list[tuple[str, str, Json]]
) -> None:
    """DELETE on an in-flight synthesis soft-deletes, releases the hold, fires cancelled."""
    before = await balance(http, emu.api_key)
    created = await synthesize(http, emu.api_key)
    path = f"/v1/characters/{created['id']}"
    deleted = await call(http, "DELETE", path, emu.api_key)
    assert emu.requests[-1].bucket == "characters_post"
    assert deleted == {"id": created["id"], "object": "character", "deleted": True}
    assert await balance(http, emu.api_key) == before
    assert [kind for _, kind, _ in events] == ["character.cancelled"]
    assert events[0][2]["status"] == "deleted"
    assert events[0][2]["deleted_at"] is not None
    emu.advance(SYNTHESIS_MAX)
    assert [kind for _, kind, _ in events] == ["character.cancelled"]
    assert await balance(http, emu.api_key) == before
    assert ledger_agrees(emu, emu.team_id)
    assert await fails(http, "GET", path, emu.api_key) == (
        404,
        "resource_not_found",
        "character_id",
    )
    assert await fails(http, "DELETE", path, emu.api_key) == (
        404,
        "resource_not_found",
        "character_id",
    )


async def test_soft_delete_hides_but_blocks_image_use(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """A soft-deleted character is 404 everywhere, gone from the list, not_ready for images."""
    upload_id = await uploaded(http, anonymous, emu.api_key)
    body = {"name": "A", "upload_ids": [upload_id]}
    created = await call(http, "POST", "/v1/characters", emu.api_key, body, 201)
    ref_url = created["refs"][0]["url"]
    path = f"/v1/characters/{created['id']}"
    await call(http, "DELETE", path, emu.api_key)
    for method, suffix, payload in (
        ("GET", "", None),
        ("PATCH", "", {"name": "B"}),
        ("POST", "/save", None),
        ("POST", "/refs/regenerate", {"pose": "front"}),
        ("POST", "/resynthesize", {}),
    ):
        assert await fails(http, method, path + suffix, emu.api_key, payload) == (
            404,
            "resource_not_found",
            "character_id",
        )
    assert (await call(http, "GET", "/v1/characters", emu.api_key))["data"] == []
    with pytest.raises(ApiError) as raised:
        emu.state.characters.require_ready(emu.team_id, created["id"])
    assert (raised.value.status, raised.value.code) == (400, "character_not_ready")
    async with anonymous.get(ref_url) as gone:
        assert gone.status == 404


async def test_reviewing_flow_save_and_hard_delete(
    emu: Emulator, http: aiohttp.ClientSession, events: list[tuple[str, str, Json]]
) -> None:
    """A forced reviewing result is charged; save makes it ready; DELETE on reviewing is hard."""
    store = emu.state.characters
    store.force_next_outcome("reviewing")
    store.force_next_outcome("reviewing")
    saved = await synthesize(http, emu.api_key)
    dropped = await synthesize(http, emu.api_key)
    emu.advance(SYNTHESIS_MAX)
    for created in (saved, dropped):
        got = await call(http, "GET", f"/v1/characters/{created['id']}", emu.api_key)
        assert (got["status"], len(got["refs"])) == ("reviewing", 4)
    assert events == []
    before = await balance(http, emu.api_key)
    save = f"/v1/characters/{saved['id']}/save"
    ready = await call(http, "POST", save, emu.api_key)
    assert emu.requests[-1].bucket == "characters_post"
    assert ready["status"] == "ready"
    assert [kind for _, kind, _ in events] == ["character.completed"]
    again = await call(http, "POST", save, emu.api_key)
    assert again == ready
    assert len(events) == 1
    path = f"/v1/characters/{dropped['id']}"
    await call(http, "DELETE", path, emu.api_key)
    assert await balance(http, emu.api_key) == before
    assert await fails(http, "GET", path, emu.api_key) == (
        404,
        "resource_not_found",
        "character_id",
    )
    with pytest.raises(ApiError) as raised:
        store.require_ready(emu.team_id, dropped["id"])
    assert (raised.value.status, raised.value.code) == (404, "resource_not_found")
    assert ledger_agrees(emu, emu.team_id)


async def test_save_refuses_synthesizing_and_failed(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """save on synthesizing or failed is 400 invalid_request_error."""
    emu.state.characters.force_next_outcome("failed")
    failing = await synthesize(http, emu.api_key)
    assert await fails(http, "POST", f"/v1/characters/{failing['id']}/save", emu.api_key) == (
        400,
        "invalid_request_error",
        None,
    )
    emu.advance(SYNTHESIS_MAX)
    assert await fails(http, "POST", f"/v1/characters/{failing['id']}/save", emu.api_key) == (
        400,
        "invalid_request_error",
        None,
    )


# -- regenerate and resynthesize -----------------------------------------------------------
async def ready_character(http: aiohttp.ClientSession, emu: Emulator) -> Json:
    created = await synthesize(http, emu.api_key)
    emu.advance(SYNTHESIS_MAX)
    return await call(http, "GET", f"/v1/characters/{created['id']}", emu.api_key)


async def test_regenerate_rerenders_one_pose_for_one_generation(
    emu: Emulator, http: aiohttp.ClientSession, events: list[tuple[str, str, Json]]
) -> None:
    """regenerate is 200 synthesizing, holds 1 credit, then replaces only that pose's ref."""
    ready = await ready_character(http, emu)
    before = await balance(http, emu.api_key)
    path = f"/v1/characters/{ready['id']}/refs/regenerate"
    body = {"pose": "side", "prompt_override": "soft studio lighting"}
    started = await call(http, "POST", path, emu.api_key, body)
    assert emu.requests[-1].bucket == "characters_synthesize"
    assert started["status"] == "synthesizing"
    assert [ref["pose"] for ref in started["refs"]] == list(SYNTHESIZED_POSES)
    assert (await balance(http, emu.api_key))["held_credits"] == before["held_credits"] + 1
    assert await fails(http, "POST", path, emu.api_key, body) == (
        400,
        "invalid_request_error",
        None,
    )
    emu.advance(SYNTHESIS_MAX)
    done = await call(http, "GET", f"/v1/characters/{ready['id']}", emu.api_key)
    assert done["status"] == "ready"
    old = {ref["pose"]: ref["url"].split("?")[0] for ref in ready["refs"]}
    new = {ref["pose"]: ref["url"].split("?")[0] for ref in done["refs"]}
    assert set(new) == set(old)
    assert [pose for pose in new if new[pose] != old[pose]] == ["side"]
    assert (await balance(http, emu.api_key))["credits"] == before["credits"] - 1
    assert [kind for _, kind, _ in events] == ["character.completed", "character.completed"]
    assert ledger_agrees(emu, emu.team_id)


async def test_regenerate_validation_and_credits(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Missing pose is missing_field, a bad pose invalid_request_error; no credits is 402."""
    ready = await ready_character(http, emu)
    path = f"/v1/characters/{ready['id']}/refs/regenerate"
    assert await fails(http, "POST", path, emu.api_key, {}) == (400, "missing_field", "pose")
    assert await fails(http, "POST", path, emu.api_key, {"pose": "left"}) == (
        400,
        "invalid_request_error",
        "pose",
    )
    assert await fails(http, "POST", path, emu.api_key, {"pose": "front", "seed": 1}) == (
        400,
        "invalid_format",
        "seed",
    )
    emu.set_credits(emu.team_id, 0.5)
    assert await fails(http, "POST", path, emu.api_key, {"pose": "front"}) == (
        402,
        "insufficient_credits",
        None,
    )
    resynth = f"/v1/characters/{ready['id']}/resynthesize"
    assert await fails(http, "POST", resynth, emu.api_key, {}) == (
        402,
        "insufficient_credits",
        None,
    )
    assert await fails(
        http, "POST", "/v1/characters/char_01NOPE/refs/regenerate", emu.api_key, {"pose": "front"}
    ) == (
        404,
        "resource_not_found",
        "character_id",
    )


async def test_regenerate_and_resynthesize_are_idempotent(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Same key + body replays without a second hold; another body or character is 409."""
    first = await ready_character(http, emu)
    second = await ready_character(http, emu)
    for suffix, body, other_body, cost in (
        ("/refs/regenerate", {"pose": "front"}, {"pose": "back"}, 1),
        ("/resynthesize", {"force_all": True}, {"force_all": False}, 4),
    ):
        idem = {"Idempotency-Key": f"key{suffix}"}
        before = await balance(http, emu.api_key)
        path = f"/v1/characters/{first['id']}{suffix}"
        async with http.post(path, json=body, headers=key(emu.api_key, **idem)) as response:
            assert response.status == 200
            original = await response.read()
        async with http.post(path, json=body, headers=key(emu.api_key, **idem)) as response:
            assert response.headers["Aurous-Idempotent-Replayed"] == "true"
            assert await response.read() == original
        after = await balance(http, emu.api_key)
        assert after["held_credits"] == before["held_credits"] + cost
        elsewhere = f"/v1/characters/{second['id']}{suffix}"
        for target, payload in ((path, other_body), (elsewhere, body)):
            async with http.post(
                target, json=payload, headers=key(emu.api_key, **idem)
            ) as response:
                assert await error_of(response) == (
                    409,
                    "idempotency_key_in_use",
                    "Idempotency-Key",
                )
        emu.advance(SYNTHESIS_MAX)
    assert ledger_agrees(emu, emu.team_id)


async def test_resynthesize_keeps_uploads_unless_force_all(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """Without force_all uploaded poses stay; with it every ref is re-rendered. Both cost 4."""
    front = await uploaded(http, anonymous, emu.api_key, png(5, 5), "front.png")
    await call(http, "POST", "/v1/characters/uploads/classify", emu.api_key, {"upload_id": front})
    body = {"name": "Mixed", "upload_ids": [front]}
    created = await call(http, "POST", "/v1/characters", emu.api_key, body, 201)
    path = f"/v1/characters/{created['id']}"
    upload_url = created["refs"][0]["url"].split("?")[0]
    before = await balance(http, emu.api_key)
    started = await call(http, "POST", f"{path}/resynthesize", emu.api_key, {})
    assert started["status"] == "synthesizing"
    assert await fails(http, "POST", f"{path}/resynthesize", emu.api_key, {}) == (
        400,
        "invalid_request_error",
        None,
    )
    emu.advance(SYNTHESIS_MAX)
    kept = await call(http, "GET", path, emu.api_key)
    assert [ref["pose"] for ref in kept["refs"]] == list(SYNTHESIZED_POSES)
    urls = {ref["pose"]: ref["url"].split("?")[0] for ref in kept["refs"]}
    assert urls["front"] == upload_url
    await call(http, "POST", f"{path}/resynthesize", emu.api_key, {"force_all": True})
    emu.advance(SYNTHESIS_MAX)
    forced = await call(http, "GET", path, emu.api_key)
    assert [ref["pose"] for ref in forced["refs"]] == list(SYNTHESIZED_POSES)
    assert forced["refs"][1]["url"].split("?")[0] != upload_url
    assert (await balance(http, emu.api_key))["credits"] == before["credits"] - 8
    assert ledger_agrees(emu, emu.team_id)


async def test_resynthesize_from_failed_recovers(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A failed character may be resynthesized; error_message clears when it starts."""
    emu.state.characters.force_next_outcome("failed")
    created = await synthesize(http, emu.api_key)
    emu.advance(SYNTHESIS_MAX)
    path = f"/v1/characters/{created['id']}"
    started = await call(http, "POST", f"{path}/resynthesize", emu.api_key, {"force_all": False})
    assert (started["status"], started["error_message"]) == ("synthesizing", None)
    emu.advance(SYNTHESIS_MAX)
    assert (await call(http, "GET", path, emu.api_key))["status"] == "ready"


# -- read, update, list ----------------------------------------------------------------------
async def test_patch_renames_and_replaces_attributes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """PATCH changes name and replaces (never merges) attributes; updated_at moves."""
    created = await synthesize(http, emu.api_key, attributes={"gender": "female", "age": 28})
    path = f"/v1/characters/{created['id']}"
    emu.advance(5)
    renamed = await call(http, "PATCH", path, emu.api_key, {"name": "Nova"})
    assert emu.requests[-1].bucket == "characters_post"
    assert (renamed["name"], renamed["attributes"]) == ("Nova", {"gender": "female", "age": 28})
    assert ts(renamed["updated_at"]) > ts(created["updated_at"])
    replaced = await call(http, "PATCH", path, emu.api_key, {"attributes": {"eye_color": "green"}})
    assert replaced["attributes"] == {"eye_color": "green"}
    assert replaced["status"] == "synthesizing"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"status": "ready"}, "status"),
        ({"name": "ok", "refs": [], "id": "x"}, "refs"),
        ({"client_reference_id": "x"}, "client_reference_id"),
        ({"name": "x" * 121}, "name"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"attributes": {"height": 180}}, "attributes.height"),
        ({"attributes": {"age": "old"}}, "attributes.age"),
        ({"attributes": None}, "attributes"),
        ({"attributes": "tall"}, "attributes"),
    ],
)
async def test_patch_rejects_with_invalid_request(
    emu: Emulator, http: aiohttp.ClientSession, body: Json, param: str
) -> None:
    """Any field but name/attributes, or a bad value, is 400 invalid_request on that field."""
    created = await synthesize(http, emu.api_key)
    path = f"/v1/characters/{created['id']}"
    assert await fails(http, "PATCH", path, emu.api_key, body) == (400, "invalid_request", param)


async def test_list_pages_newest_first_without_deleted_or_foreign(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The cursor list is newest first, skips soft-deleted and other teams' characters."""
    ids = [(await synthesize(http, emu.api_key, name=f"C{i}"))["id"] for i in range(5)]
    other = emu.add_team()
    await synthesize(http, other.api_key)
    await call(http, "DELETE", f"/v1/characters/{ids[2]}", emu.api_key)
    expected = [ids[4], ids[3], ids[1], ids[0]]
    page = await call(http, "GET", "/v1/characters?limit=2", emu.api_key)
    assert emu.requests[-1].bucket == "characters_get"
    assert page["object"] == "list"
    assert [c["id"] for c in page["data"]] == expected[:2]
    assert (page["has_more"], page["next_cursor"]) == (True, expected[1])
    rest = await call(
        http, "GET", f"/v1/characters?limit=2&starting_after={page['next_cursor']}", emu.api_key
    )
    assert [c["id"] for c in rest["data"]] == expected[2:]
    assert (rest["has_more"], rest["next_cursor"]) == (False, None)
    assert await fails(http, "GET", "/v1/characters?limit=0", emu.api_key) == (
        400,
        "value_out_of_range",
        "limit",
    )


async def test_characters_are_private_to_their_team(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Another team's id is 404 on every route and for require_ready."""
    created = await synthesize(http, emu.api_key)
    other = emu.add_team()
    path = f"/v1/characters/{created['id']}"
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("POST", "/save", None),
    ):
        assert await fails(http, method, path + suffix, other.api_key, body) == (
            404,
            "resource_not_found",
            "character_id",
        )
    with pytest.raises(ApiError) as raised:
        emu.state.characters.require_ready(other.id, created["id"])
    assert (raised.value.status, raised.value.param) == (404, "character_id")


async def test_require_ready_follows_the_status(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """require_ready passes only ready; synthesizing and failed are character_not_ready."""
    store = emu.state.characters
    created = await synthesize(http, emu.api_key)
    with pytest.raises(ApiError) as raised:
        store.require_ready(emu.team_id, created["id"])
    assert (raised.value.status, raised.value.code, raised.value.param) == (
        400,
        "character_not_ready",
        "character_id",
    )
    emu.advance(SYNTHESIS_MAX)
    store.require_ready(emu.team_id, created["id"])
    with pytest.raises(ApiError) as unknown:
        store.require_ready(emu.team_id, "char_01NOPE")
    assert (unknown.value.status, unknown.value.code) == (404, "resource_not_found")


async def test_ref_urls_last_about_a_day(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """A ref URL works for 24 h then answers 410; GET mints a fresh one."""
    ready = await ready_character(http, emu)
    url = ready["refs"][0]["url"]
    emu.advance(24 * HOUR - 60)
    async with anonymous.get(url) as image:
        assert image.status == 200
    emu.advance(60)
    async with anonymous.get(url) as stale:
        assert await error_of(stale) == (410, "output_expired", None)
    fresh = await call(http, "GET", f"/v1/characters/{ready['id']}", emu.api_key)
    async with anonymous.get(fresh["refs"][0]["url"]) as image:
        assert image.status == 200
    async with anonymous.get(url.split("?")[0]) as unsigned:
        assert unsigned.status == 404


async def test_scopes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A read key may list and get characters; every write route is 403 missing_scope."""
    created = await synthesize(http, emu.api_key)
    reader = emu.add_key(emu.team_id, "read")
    await call(http, "GET", "/v1/characters", reader)
    await call(http, "GET", f"/v1/characters/{created['id']}", reader)
    path = f"/v1/characters/{created['id']}"
    for method, target, body in (
        ("POST", "/v1/characters/uploads/init", {}),
        ("POST", "/v1/characters/uploads/classify", {}),
        ("POST", "/v1/characters", {"name": "A", "generate": True}),
        ("PATCH", path, {}),
        ("DELETE", path, None),
        ("POST", f"{path}/save", None),
        ("POST", f"{path}/refs/regenerate", {"pose": "front"}),
        ("POST", f"{path}/resynthesize", {}),
    ):
        assert await fails(http, method, target, reader, body) == (403, "missing_scope", None)


# -- golden shapes ------------------------------------------------------------------------
async def test_character_matches_the_golden_example(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A ready character has every field of the contract's character example."""
    ready = await ready_character(http, emu)
    assert_golden_shape(ready, "character.json")


async def test_ticket_and_classification_match_the_golden_examples(
    emu: Emulator, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """uploads/init and uploads/classify answers have every field of the examples."""
    ticket = await init(http, emu.api_key)
    await put(anonymous, ticket, png())
    body = {"upload_id": ticket["upload_id"]}
    result = await call(http, "POST", "/v1/characters/uploads/classify", emu.api_key, body)
    assert_golden_shape(result, "upload_classification.json")
    assert_golden_shape(ticket, "upload_ticket.json")


async def test_delete_response_matches_the_golden_example(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The delete answer has every field of the contract's example."""
    created = await synthesize(http, emu.api_key)
    deleted = await call(http, "DELETE", f"/v1/characters/{created['id']}", emu.api_key)
    assert_golden_shape(deleted, "character_deleted.json")
