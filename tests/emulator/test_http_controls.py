"""The emulator's controls over HTTP (``/_emulator/…``), as another process drives them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import anyio.streams.text
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._standalone import ENV_CONTROL_TOKEN, add_arguments, settings_from

pytestmark = pytest.mark.anyio

TOKEN = "control-token-for-tests"
Json = Any


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(time_scale=1000.0, control_token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


async def control(
    http: aiohttp.ClientSession, method: str, path: str, body: Json = None, token: str = TOKEN
) -> tuple[int, Json]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, f"/_emulator{path}", json=body, headers=headers) as response:
        return response.status, await response.json()


async def api(
    http: aiohttp.ClientSession, key: str, method: str, path: str, body: Json = None
) -> tuple[int, Json]:
    async with http.request(method, path, json=body, headers={"X-Api-Key": key}) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("token", "code"), [("", "missing_api_key"), ("wrong-token", "invalid_api_key")]
)
async def test_a_missing_or_wrong_token_is_a_401_envelope(
    http: aiohttp.ClientSession, token: str, code: str
) -> None:
    """Without the right bearer token every control route answers 401 in the error envelope."""
    status, body = await control(http, "GET", "/stats", token=token)
    assert status == 401
    assert body["error"]["code"] == code
    assert body["error"]["type"] == "authentication"
    assert body["error"]["request_id"].startswith("req_")


async def test_an_api_key_is_not_a_control_token(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The demo team's API key opens nothing under /_emulator/."""
    assert (await control(http, "GET", "/stats", token=emu.api_key))[0] == 401


async def test_without_a_token_setting_the_routes_do_not_exist() -> None:
    """An emulator started without a control token answers 404 like any unknown route."""
    async with run_emulator() as emulator, aiohttp.ClientSession(emulator.base_url) as http:
        status, body = await control(http, "GET", "/stats")
    assert status == 404
    assert body["error"]["code"] == "resource_not_found"


async def test_stats_count_requests_by_route_status_and_bucket(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Stats count API traffic (429s included) by template; control traffic is not counted."""
    await control(http, "POST", "/faults", {"kind": "rate_limit", "match": "POST /v1/images"})
    assert (await api(http, emu.api_key, "POST", "/v1/images", {"prompt": "a"}))[0] == 429
    status, created = await api(http, emu.api_key, "POST", "/v1/images", {"prompt": "a"})
    assert status == 201
    assert (await api(http, emu.api_key, "GET", f"/v1/images/{created['id']}"))[0] == 200
    status, stats = await control(http, "GET", "/stats")
    assert status == 200
    requests = stats["requests"]
    assert requests["total"] == 3
    assert requests["by_status"] == {"200": 1, "201": 1, "429": 1}
    assert requests["by_bucket"] == {"get": 1, "images_post": 2}
    assert requests["by_route"] == {"GET /v1/images/{id}": 1, "POST /v1/images": 2}
    assert {"method": "POST", "route": "/v1/images", "status": 429, "bucket": "images_post",
            "count": 1} in requests["rows"]  # fmt: skip
    assert emu.stats() == stats  # the Python control answers the same
    assert list(stats["generations"]) == [emu.team_id]
    assert stats["generations"][emu.team_id]["total"] == 1
    assert emu.requests[-1].status == 200  # control calls never reach the request log
    assert len(emu.requests) == 3


async def test_control_routes_are_never_rate_limited(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Far more control calls than any bucket holds all succeed, with no rate-limit headers."""
    for _ in range(30):
        async with http.get("/_emulator/stats", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            assert "X-RateLimit-Limit" not in r.headers


async def test_teams_keys_and_credits(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A team added over HTTP works with its key; a read key is scoped; credits gate creates."""
    status, team = await control(http, "POST", "/teams", {"name": "Fleet", "credits": 50})
    assert status == 201
    assert team["id"].startswith("team_")
    assert (await api(http, team["api_key"], "GET", "/v1/balance"))[1]["credits"] == 50
    status, key = await control(http, "POST", f"/teams/{team['id']}/keys", {"scope": "read"})
    assert status == 201
    assert (await api(http, key["api_key"], "GET", "/v1/team"))[1]["id"] == team["id"]
    assert (await api(http, key["api_key"], "POST", "/v1/images", {"prompt": "a"}))[0] == 403
    status, balance = await control(http, "PUT", f"/teams/{team['id']}/credits", {"credits": 0})
    assert (status, balance["available_credits"]) == (200, 0)
    assert (await api(http, team["api_key"], "POST", "/v1/images", {"prompt": "a"}))[0] == 402
    assert (await control(http, "PUT", "/teams/team_nope/credits", {"credits": 1}))[0] == 404


async def test_forced_outcomes_by_id_and_for_the_next_generation(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Outcomes forced over HTTP end generations as asked; bad statuses are a 400."""
    _, first = await api(http, emu.api_key, "POST", "/v1/images", {"prompt": "a"})
    status, row = await control(
        http, "POST", f"/generations/{first['id']}/outcome", {"status": "failed"}
    )
    assert (status, row["status"]) == (200, "failed")
    await control(http, "POST", "/next_outcome", {"status": "moderation_rejected"})
    _, second = await api(http, emu.api_key, "POST", "/v1/images", {"prompt": "b"})
    status, clock = await control(http, "POST", "/clock/advance", {"seconds": 3600})
    assert status == 200
    assert clock["epoch_seconds"] >= emu.clock.time() - 5
    _, done = await api(http, emu.api_key, "GET", f"/v1/images/{second['id']}")
    assert done["status"] == "moderation_rejected"
    bad = await control(http, "POST", "/next_outcome", {"status": "exploded"})
    assert (bad[0], bad[1]["error"]["code"]) == (400, "invalid_format")
    gone = await control(http, "POST", "/generations/img_nope/outcome", {"status": "failed"})
    assert gone[0] == 404


async def test_generations_list_server_side_rows(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Every row of every team is listed with its team, and ``team_id`` filters."""
    _, other = await control(http, "POST", "/teams", {"name": "B"})
    await api(http, emu.api_key, "POST", "/v1/images", {"prompt": "a"})
    await api(http, other["api_key"], "POST", "/v1/images", {"prompt": "b"})
    _, everything = await control(http, "GET", "/generations")
    assert [row["team_id"] for row in everything["data"]] == [emu.team_id, other["id"]]
    _, mine = await control(http, "GET", f"/generations?team_id={other['id']}")
    assert [row["prompt"] for row in mine["data"]] == ["b"]


async def test_faults_are_injected_and_cleared(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A status fault hits matching requests until cleared; an unknown kind is a 400."""
    status, fault = await control(
        http,
        "POST",
        "/faults",
        {"kind": "status", "status": 502, "match": "GET /v1/team", "times": -1},
    )
    assert (status, fault["kind"], fault["times"]) == (201, "status", -1)
    assert (await api(http, emu.api_key, "GET", "/v1/team"))[0] == 502
    assert (await api(http, emu.api_key, "GET", "/v1/team"))[0] == 502
    assert (await control(http, "DELETE", "/faults"))[0] == 200
    assert (await api(http, emu.api_key, "GET", "/v1/team"))[0] == 200
    bad = await control(http, "POST", "/faults", {"kind": "meteor"})
    assert (bad[0], bad[1]["error"]["param"]) == (400, "kind")
    unknown = await control(http, "POST", "/faults", {"kind": "delay", "colour": "red"})
    assert (unknown[0], unknown[1]["error"]["param"]) == (400, "colour")
    never = await control(http, "POST", "/faults", {"kind": "status", "times": 0})
    assert (never[0], never[1]["error"]["param"]) == (400, "times")
    _, defaults = await control(http, "POST", "/faults", {"kind": "status"})
    assert (defaults["times"], defaults["status"], defaults["match"]) == (1, 503, None)


def test_control_token_comes_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--control-token`` sets the token, the environment variable is its default, and the
    settings' repr never shows it."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from(parser.parse_args([])).control_token is None
    assert settings_from(parser.parse_args(["--control-token", "t-1"])).control_token == "t-1"
    monkeypatch.setenv(ENV_CONTROL_TOKEN, "t-2")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from(parser.parse_args([]))
    assert settings.control_token == "t-2"
    assert "t-2" not in repr(settings)


async def test_a_standalone_emulator_is_driven_from_another_process() -> None:
    """``python -m aurous_async.testing`` with the token in its environment serves the controls."""
    env = {**os.environ, ENV_CONTROL_TOKEN: TOKEN}
    command = [sys.executable, "-m", "aurous_async.testing", "--port", "0"]
    async with await anyio.open_process(command, env=env) as process:
        try:
            assert process.stdout is not None
            lines = anyio.streams.text.TextReceiveStream(process.stdout)
            printed = ""
            with anyio.fail_after(30):
                while "\n" not in printed:
                    printed += await lines.receive()
            base_url = printed.split("listening on ")[1].split()[0]
            async with aiohttp.ClientSession(base_url) as http:
                status, team = await control(http, "POST", "/teams", {"name": "Remote"})
                assert status == 201
                assert (await api(http, team["api_key"], "GET", "/v1/team"))[1]["name"] == "Remote"
                _, stats = await control(http, "GET", "/stats")
                assert stats["requests"]["by_route"] == {"GET /v1/team": 1}
        finally:
            process.terminate()


async def test_webhook_fault_hold_release_and_deliveries(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Held deliveries wait; a webhook fault set over HTTP duplicates and skews them; the
    delivery log lists every attempt."""
    received: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(request.headers["Aurous-Webhook-Signature"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with TestServer(app, host="127.0.0.1") as receiver:
        hook = {"url": str(receiver.make_url("/hook")), "events": ["image.completed"]}
        _, endpoint = await api(http, emu.api_key, "POST", "/v1/webhook_endpoints", hook)
        status, fault = await control(
            http, "PUT", "/webhooks/fault", {"duplicate": True, "skew": -1000}
        )
        assert (status, fault["duplicate"], fault["skew"]) == (200, True, -1000)
        assert (await control(http, "POST", "/webhooks/hold"))[0] == 200
        test = f"/v1/webhook_endpoints/{endpoint['id']}/test"
        _, fired = await api(http, emu.api_key, "POST", test, {"event_type": "image.completed"})
        assert (await control(http, "GET", "/webhooks/deliveries"))[1]["data"] == []
        assert (await control(http, "POST", "/webhooks/release", {"reverse": True}))[0] == 200
        with anyio.fail_after(10):
            await emu.state.webhooks.wait_idle()
        _, log = await control(http, "GET", "/webhooks/deliveries")
    assert [(d["event_id"], d["status"]) for d in log["data"]] == [(fired["event_id"], 200)] * 2
    assert len(received) == 2
    stamp = int(received[0].split(",")[0].removeprefix("t="))
    assert stamp < time.time() - 900
    assert (await control(http, "DELETE", "/faults"))[0] == 200
    assert emu.state.webhooks.fault is None
