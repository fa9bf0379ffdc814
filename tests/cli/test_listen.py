"""``aurous webhooks listen``: the secret off the command line, one line per rejected delivery."""

from __future__ import annotations

import io
import json
import os
import re
import signal
from pathlib import Path

import aiohttp
import anyio
import pytest

from aurous_async._cli._output import EXIT_OK, EXIT_USAGE
from aurous_async.webhooks import sign

from ._support import free_port, run_cli, start_cli, until

SECRET = "whsec_cli_listen_secret"
BODY = json.dumps(
    {
        "id": "evt_listen_1",
        "object": "event",
        "type": "image.completed",
        "created_at": "2026-05-15T10:00:00Z",
        "api_version": "2026-05-15",
        "synthetic": True,
        "data": {"id": "img_listen_1", "status": "succeeded"},
    }
).encode()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUROUS_")}
    env.update(extra)
    return env


async def _abort_mid_body(port: int) -> None:
    """Send the head of a delivery and half its body, then hang up."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        head = (
            "POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        await stream.send(head.encode() + b'{"id": "evt_')


@pytest.mark.anyio
@pytest.mark.parametrize("source", ["environment", "file", "option"])
async def test_listen_verifies_with_the_secret_from_each_source(
    tmp_path: Path, source: str
) -> None:
    """The secret from ``AUROUS_WEBHOOK_SECRET``, ``--secret-file`` or ``--secret`` verifies
    deliveries; forged, oversized and aborted ones are one line each on stderr, never a
    traceback, and Ctrl-C stops the listener with exit 0."""
    port = free_port()
    log = tmp_path / "listen.log"
    args = ["webhooks", "listen", "--port", str(port)]
    env = _env()
    if source == "environment":
        env["AUROUS_WEBHOOK_SECRET"] = SECRET
    elif source == "option":
        args += ["--secret", SECRET]
    else:
        secret_file = tmp_path / "secret"
        secret_file.write_text(SECRET + "\n")
        args += ["--secret-file", str(secret_file)]
    process = await start_cli(args, env, log)
    try:
        await until(lambda: "listening on" in log.read_text() or process.returncode is not None)
        assert process.returncode is None, log.read_text()
        url = f"http://127.0.0.1:{port}/webhooks"
        async with aiohttp.ClientSession() as session:
            good = {"Aurous-Webhook-Signature": sign(BODY, SECRET)}
            async with session.post(url, data=BODY, headers=good) as response:
                assert response.status == 200
            forged = {"Aurous-Webhook-Signature": sign(BODY, "whsec_wrong")}
            async with session.post(url, data=BODY, headers=forged) as response:
                assert response.status == 400
            async with session.post(url, data=io.BytesIO(b"x" * (2 * 1024 * 1024))) as response:
                assert response.status == 413
        await _abort_mid_body(port)
        await until(lambda: "aborted webhook delivery" in log.read_text())
        await until(lambda: "evt_listen_1" in log.read_text())
    finally:
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(15):
            code = await process.wait()
    text = log.read_text()
    assert code == EXIT_OK, text
    assert "image.completed  evt_listen_1  img_listen_1 succeeded" in text
    assert "Traceback" not in text
    rejections = [line for line in text.splitlines() if "delivery" in line]
    assert len(rejections) == 3, text
    assert "rejected a webhook delivery: no_matching_signature" in text
    # http.HTTPStatus names it "Content Too Large" from Python 3.13 on.
    assert re.search(r"413 (Request Entity|Content) Too Large", text), text
    assert SECRET not in text


@pytest.mark.anyio
async def test_listen_without_a_secret_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no secret anywhere the listener refuses to start, naming where to put one."""
    monkeypatch.delenv("AUROUS_WEBHOOK_SECRET", raising=False)
    result = await run_cli(["webhooks", "listen", "--port", str(free_port())])
    assert result.code == EXIT_USAGE
    assert "set AUROUS_WEBHOOK_SECRET or pass --secret-file PATH" in result.stderr
