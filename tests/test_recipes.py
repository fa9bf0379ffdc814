"""The recipes in examples/ run against the emulator, as a user would run them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
import uvicorn
from aiohttp import web

from aurous_async import AsyncAurous, GenerationStatus, ScaledClock
from aurous_async.testing import Emulator, run_emulator

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WAIT = 20.0


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` afresh (its module-level objects are new each time)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@contextlib.contextmanager
def loopback_socket() -> Iterator[socket.socket]:
    """A listening socket on a free loopback port, for a web app to serve on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def web_app_env(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Emulator, socket.socket]]:
    """An emulator whose jobs wait for the clock, a webhook endpoint on the app's socket,
    and the environment a deployed app reads (key, base URL, webhook secret)."""
    async with run_emulator() as emu, AsyncAurous(emu.api_key, base_url=emu.base_url) as admin:
        with loopback_socket() as sock:
            endpoint = await admin.webhook_endpoints.create(
                url=f"{url_of(sock)}/webhooks", events=["*"]
            )
            assert endpoint.secret is not None
            monkeypatch.setenv("AUROUS_API_KEY", emu.api_key)
            monkeypatch.setenv("AUROUS_BASE_URL", emu.base_url)
            monkeypatch.setenv("AUROUS_WEBHOOK_SECRET", endpoint.secret)
            yield emu, sock


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The ``data`` of each Server-Sent Event of a streaming response."""
    async for line in response.content:
        if line.startswith(b"data: "):
            yield json.loads(line[len(b"data: ") :])


async def exercise_web_app(emu: Emulator, base_url: str) -> None:
    """Create, follow over SSE until a webhook ends the job, read it back, reject forgeries."""
    async with aiohttp.ClientSession(base_url) as http:
        async with http.post("/images", json={"prompt": "a lighthouse at dusk"}) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
        assert created["status"] == "queued"
        statuses = []
        with anyio.fail_after(WAIT):
            async with http.get(f"/images/{created['id']}/events") as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                async for snapshot in read_events(response):
                    statuses.append(snapshot["status"])
                    if snapshot["status"] == "queued":
                        emu.advance(3600)  # the job runs its course; its webhook follows
        assert statuses == ["queued", "succeeded"]
        assert [d.status for d in emu.deliveries if d.event_type == "image.completed"] == [200]
        async with http.get(f"/images/{created['id']}") as response:
            assert response.status == 200
            assert (await response.json())["output_urls"]
        async with http.get("/images/img_01JZZZZZZZZZZZZZZZZZZZZZZZ") as response:
            assert response.status == 404
        async with http.post("/images", json={"prompt": " "}) as response:
            assert response.status == 422
            assert (await response.json())["param"] == "prompt"
        async with http.post("/webhooks", data=b"{}", headers={"X": "y"}) as response:
            assert response.status == 400


async def test_fastapi_app_creates_streams_receives_webhooks_and_reads() -> None:
    """fastapi_app under uvicorn: create, SSE until the webhook lands, get, errors mapped."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        async with web_app_env(monkeypatch) as (emu, sock):
            recipe = load("fastapi_app")
            config = uvicorn.Config(
                recipe.app, lifespan="on", log_level="warning", ws="none", http="h11"
            )
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                with anyio.fail_after(WAIT):
                    # uvicorn offers a flag, not an event.
                    while not server.started:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                await exercise_web_app(emu, url_of(sock))
            finally:
                server.should_exit = True
                await serving


async def test_aiohttp_app_creates_streams_receives_webhooks_and_reads() -> None:
    """aiohttp_app: the same behaviour on aiohttp.web."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        async with web_app_env(monkeypatch) as (emu, sock):
            runner = web.AppRunner(load("aiohttp_app").create_app(), handle_signals=False)
            await runner.setup()
            try:
                await web.SockSite(runner, sock).start()
                await exercise_web_app(emu, url_of(sock))
            finally:
                await runner.cleanup()


@contextlib.asynccontextmanager
async def fast_client(**settings: Any) -> AsyncIterator[tuple[Emulator, AsyncAurous]]:
    """An emulator and a client sharing one clock 100 times faster than real time."""
    clock = ScaledClock(100.0)
    async with (
        run_emulator(clock=clock, rate_clock=clock, **settings) as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, clock=clock) as client,
    ):
        yield emu, client


def saved_pngs(directory: Path) -> int:
    """How many files ``directory`` holds, after checking that each is a PNG."""
    files = list(directory.iterdir())
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in files)
    return len(files)


async def test_bot_serves_users_at_once_and_cancels_for_those_who_give_up() -> None:
    """Three users share one client; the one who gives up has the job cancelled too."""
    bot_recipe = load("bot")
    async with fast_client() as (emu, client):
        bot = bot_recipe.ImageBot(client)
        emu.force_next_outcome("processing")  # ada's job would run forever
        ada = bot.ask("ada", "a lighthouse at dusk")
        with anyio.fail_after(WAIT):
            # Until ada's create has reached the server.
            while not emu.generations():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        bob = bot.ask("bob", "a red fox in the snow")
        cat = bot.ask("cat", "a bookshop with a cat")
        bot.give_up("ada")
        with pytest.raises(asyncio.CancelledError):
            await ada
        with anyio.fail_after(WAIT):
            replies = [await bob, await cat]
        assert all(reply.startswith("Here you go: http") for reply in replies)
        rows = emu.generations()
        assert sorted(row["status"] for row in rows) == ["cancelled", "succeeded", "succeeded"]
        assert rows[0]["prompt"] == "a lighthouse at dusk"
        assert rows[0]["status"] == "cancelled"


async def test_bot_main_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """bot.main() serves two users from the environment's API; the one who gives up is told so."""
    bot_recipe = load("bot")
    async with run_emulator(time_scale=1000.0) as emu:
        monkeypatch.setenv("AUROUS_API_KEY", emu.api_key)
        monkeypatch.setenv("AUROUS_BASE_URL", emu.base_url)
        with anyio.fail_after(WAIT):
            await bot_recipe.main()
        assert len(emu.generations()) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ada: Here you go: http")
    assert out[1] == "bob cancelled: True"


async def test_bot_cancels_a_job_whose_create_was_in_flight() -> None:
    """A user who leaves while the create is in flight still has the job cancelled."""
    bot_recipe = load("bot")
    async with fast_client() as (emu, client):
        bot = bot_recipe.ImageBot(client)
        ask = bot.ask("ada", "a lighthouse at dusk")
        await asyncio.sleep(0)  # the create is on its way, not answered yet
        bot.give_up("ada")
        with anyio.fail_after(WAIT), pytest.raises(asyncio.CancelledError):
            await ask
        [row] = emu.generations()
        assert row["status"] == "cancelled"


async def test_batch_saves_every_output_under_the_cost_cap(tmp_path: Path) -> None:
    """generate_all creates every prompt, saves each PNG and reports the costs."""
    batch = load("batch_script")
    prompts = [f"a lighthouse, take {i}" for i in range(6)]
    async with fast_client() as (emu, client):
        emu.force_next_outcome("failed", "no luck")
        with anyio.fail_after(WAIT):
            finished = await batch.generate_all(client, prompts, tmp_path, max_cost=100)
    assert sorted(g.status for g in finished).count(GenerationStatus.SUCCEEDED) == 5
    assert saved_pngs(tmp_path) == 5


async def test_batch_script_main_refuses_past_the_cost_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() reads the environment, and a batch over --max-cost exits 2 creating nothing."""
    batch = load("batch_script")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\na lighthouse\n\na red fox\n", encoding="utf-8")
    async with run_emulator() as emu:
        monkeypatch.setenv("AUROUS_API_KEY", emu.api_key)
        monkeypatch.setenv("AUROUS_BASE_URL", emu.base_url)
        code = await batch.main([str(prompts), str(tmp_path / "out"), "--max-cost", "0.5"])
        assert code == 2
        assert emu.generations() == []
    assert "refused" in capsys.readouterr().err


async def test_batch_script_main_runs_a_whole_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() on a two-line prompt file saves both images and exits 0."""
    batch = load("batch_script")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a lighthouse\na red fox\n", encoding="utf-8")
    async with run_emulator(time_scale=1000.0) as emu:
        monkeypatch.setenv("AUROUS_API_KEY", emu.api_key)
        monkeypatch.setenv("AUROUS_BASE_URL", emu.base_url)
        with anyio.fail_after(WAIT):
            code = await batch.main([str(prompts), str(tmp_path / "out"), "--max-cost", "50"])
    assert code == 0
    assert saved_pngs(tmp_path / "out") == 2
