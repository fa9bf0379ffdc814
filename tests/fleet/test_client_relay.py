"""A webhook received in one process ends a ``wait_for()`` in another (fleet mode)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from aurous_async import AsyncAurous, Generation, GenerationStatus, PollPolicy
from aurous_async.testing import run_emulator

pytestmark = pytest.mark.anyio

#: Process A: a fleet client with an attached receiver. It prints "ready" once fleet
#: mode runs, then hands each delivery read from stdin (base64 body, headers) to the
#: receiver and prints the wall-clock time just before it did.
_PROCESS_A = textwrap.dedent(
    """
    import base64, json, sys, time
    import anyio
    from aurous_async import AsyncAurous
    from aurous_async.webhooks import WebhookReceiver

    async def main(base_url, redis_url, secret):
        async with AsyncAurous(base_url=base_url, redis_url=redis_url) as client:
            receiver = WebhookReceiver(secret)
            client.attach_webhooks(receiver)
            print("ready", flush=True)
            while line := await anyio.to_thread.run_sync(sys.stdin.readline):
                delivery = json.loads(line)
                handed_at = time.time()
                answer = await receiver.handle(
                    base64.b64decode(delivery["body"]), delivery["headers"]
                )
                print(json.dumps({"handed_at": handed_at, "status": answer.status}), flush=True)

    anyio.run(main, *sys.argv[1:])
    """
)

#: Polls that never come: only the relayed event can end the wait.
_NO_POLLING = PollPolicy(webhook_interval=1e9, min_interval=1e9, max_interval=1e9)


async def test_a_webhook_received_in_process_a_ends_a_wait_for_in_process_b(
    redis_url: str,
) -> None:
    """Process A's receiver verifies a delivery; B's ``wait_for`` ends within 250 ms."""
    async with (
        run_emulator(time_scale=1.0) as emu,
        AsyncAurous(
            emu.api_key, base_url=emu.base_url, redis_url=redis_url, polling=_NO_POLLING
        ) as b,
    ):
        emu.state.webhooks.max_attempts = 1
        endpoint = await b.webhook_endpoints.create(
            url="http://127.0.0.1:9/hooks", events=["image.completed"]
        )
        assert endpoint.secret is not None
        job = await b.images.create(prompt="a lighthouse")
        environment = {**os.environ, "AUROUS_API_KEY": emu.api_key}
        async with await anyio.open_process(
            [sys.executable, "-c", _PROCESS_A, emu.base_url, redis_url, endpoint.secret],
            env=environment,
            stderr=subprocess.DEVNULL,
        ) as process_a:
            assert process_a.stdin is not None
            assert process_a.stdout is not None
            lines = BufferedByteReceiveStream(process_a.stdout)
            with anyio.fail_after(20):
                assert await lines.receive_until(b"\n", 65536) == b"ready"
            snapshots: list[Generation] = []
            ended_at = 0.0

            async def wait() -> None:
                nonlocal ended_at
                async for snapshot in b.wait_for(job):
                    snapshots.append(snapshot)
                ended_at = time.time()

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait)
                    emu.advance(120)
                    await emu.state.webhooks.wait_idle()
                    [record] = [d for d in emu.deliveries if d.event_type == "image.completed"]
                    delivery = {
                        "body": base64.b64encode(record.body).decode(),
                        "headers": dict(record.headers),
                    }
                    await process_a.stdin.send((json.dumps(delivery) + "\n").encode())
                    answer = json.loads(await lines.receive_until(b"\n", 65536))
            await process_a.stdin.aclose()
    assert answer["status"] == 200
    assert [s.status for s in snapshots] == [GenerationStatus.QUEUED, GenerationStatus.SUCCEEDED]
    latency = ended_at - answer["handed_at"]
    print(f"relay latency A->B: {latency * 1000:.1f} ms")
    assert 0 < latency < 0.25
