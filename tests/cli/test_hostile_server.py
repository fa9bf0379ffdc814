"""A server that answers with hostile ids or echoes the API key cannot write outside the
output directory, break the command, or show the key."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from aurous_async import AsyncAurous, AuthenticationError
from aurous_async._cli._output import EXIT_API, EXIT_FAILED, EXIT_OK

from ._support import run_cli

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
KEY = "al_live_SUPERSECRETKEY0123456789abcdef0123456789abcdef0123456789abcd"
HEADERS = {"Aurous-Version": "2026-05-15", "Aurous-Request-Id": "req_01HOSTILE"}
#: The id the fake server gives the generation of each prompt.
HOSTILE_IDS = {"one": "../../etc/x", "two": "a/b", "three": "img_\x1b]0;pwned\x07"}


def _generation(request: web.Request, prompt: str) -> dict[str, object]:
    return {
        "id": HOSTILE_IDS[prompt],
        "status": "succeeded",
        "prompt": prompt,
        "created_at": "2026-05-04T10:00:00Z",
        "completed_at": "2026-05-04T10:00:14Z",
        "media_type": "image",
        "image_count": 1,
        "output_urls": [f"{request.url.origin()}/media/{prompt}.png?token=tok_1"],
        "cost": {"amount": 1, "currency": "credit"},
    }


async def _estimate(request: web.Request) -> web.Response:
    body = {"object": "estimate", "estimated_cost": {"amount": 1}, "currency": "credit"}
    return web.json_response(body, headers=HEADERS)


async def _create(request: web.Request) -> web.Response:
    prompt = (await request.json())["prompt"]
    if prompt == "misfit":  # a 2xx whose body does not fit a generation
        return web.json_response({"object": "inference", "status": 7}, status=201, headers=HEADERS)
    return web.json_response(_generation(request, prompt), status=201, headers=HEADERS)


async def _media(request: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="image/png")


async def _echo_key(request: web.Request) -> web.Response:
    prefix = request.headers.get("X-Api-Key", "")[:20]
    error = {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": f"Invalid API key {prefix}... (full: {request.headers.get('X-Api-Key')})",
        "request_id": "req_01HOSTILE",
    }
    return web.json_response({"error": error}, status=401, headers=HEADERS)


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _hostile_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/images/estimate", _estimate)
    app.router.add_post("/v1/images", _create)
    app.router.add_get("/media/{name}", _media)
    return app


def _key_echo_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo_key)
    return app


@pytest.mark.anyio
async def test_hostile_ids_never_name_a_file_outside_the_directory(tmp_path: Path) -> None:
    """Ids holding ``..``, ``/`` or control codes give stand-in file names inside DIR, and
    each such line is reported (not an internal error)."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\n")
    out = tmp_path / "deep" / "er" / "out"
    async with _serve(_hostile_app()) as base_url:
        target = ["--base-url", base_url, "--api-key", KEY]
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", *target])
    assert result.code == EXIT_OK, result.stderr
    written = sorted(
        p.relative_to(tmp_path).as_posix()
        for p in await anyio.to_thread.run_sync(lambda: list(tmp_path.rglob("*")))
        if p.name != "p.txt"
    )
    outputs = [name for name in written if name.endswith(".png")]
    assert len(outputs) == 3
    assert all(name.startswith("deep/er/out/") and name.count("/") == 3 for name in outputs)
    assert all("_badid-" in name for name in outputs)
    assert not (tmp_path / "deep" / "etc").exists()
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == list(HOSTILE_IDS.values())
    assert result.stderr.count("not a plain id") == 3
    assert "\x1b" not in result.stderr


@pytest.mark.anyio
async def test_a_body_that_does_not_fit_is_that_line_s_error_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    """A create answered with a 2xx body that is not a generation fails its own line (the
    typed error in the manifest); the other lines complete; no internal error."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("misfit\none\n")
    out = tmp_path / "out"
    async with _serve(_hostile_app()) as base_url:
        target = ["--base-url", base_url, "--api-key", KEY]
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", *target])
    assert result.code == EXIT_FAILED, result.stderr
    assert "internal error" not in result.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records][1] == "succeeded"
    assert records[0]["status"] != "succeeded"
    assert "does not fit" in records[0]["error"]


@pytest.mark.anyio
async def test_an_error_echoing_the_api_key_is_redacted_in_the_sdk_and_the_cli() -> None:
    """No run of 8 or more characters of the key survives in an error from the server."""
    async with _serve(_key_echo_app()) as base_url:
        async with AsyncAurous(KEY, base_url=base_url) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.balance.get()
        result = await run_cli(["balance", "--base-url", base_url, "--api-key", KEY])
    shown = {"sdk": str(info.value), "cli": result.stderr}
    assert result.code == EXIT_API
    for text in shown.values():
        assert "Invalid API key [redacted]... (full: [redacted])" in text
        assert not any(KEY[i : i + 8] in text for i in range(len(KEY) - 7)), text
