"""The fleet batch's pieces: batch ids, when a line closes, Redis outages, the live view."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import pytest
from _redis import RedisServer
from rich.console import Console

from aurous_async._cli._fleet_batch import _closes, _RedisGuard, content_batch_id
from aurous_async._cli._inputs import Request, build_request
from aurous_async._cli._journal import Line
from aurous_async._cli._output import Output
from aurous_async._cli._progress import BatchProgress
from aurous_async._errors import FleetUnavailableError
from aurous_async._fleet._redis_link import RedisLink

pytestmark = pytest.mark.anyio


def _requests(*prompts: str) -> list[Request]:
    return [build_request(n, {"prompt": p}) for n, p in enumerate(prompts, start=1)]


def test_the_batch_id_comes_from_the_input_content() -> None:
    """The same lines give the same id; an edited or moved line gives another."""
    same = content_batch_id(_requests("a", "b"))
    assert same == content_batch_id(_requests("a", "b"))
    assert len(same) == 16
    assert same != content_batch_id(_requests("a", "c"))
    assert same != content_batch_id(_requests("b", "a"))


_LINE = Line(1, "image", "h" * 64, "{}", 0, "k", None, "img_1", "queued", None, (), None)


@pytest.mark.parametrize(
    ("changes", "closes"),
    [
        ({"status": "submitting", "generation_id": None}, False),
        ({"status": "queued"}, False),
        ({"status": "succeeded"}, False),  # its files are being saved
        ({"status": "succeeded", "files": ("a.png",)}, True),
        ({"status": "succeeded", "error": "download failed"}, True),
        ({"status": "failed", "error": "boom"}, True),
        ({"status": "processing", "error": "still processing after 5s"}, True),
        ({"status": "rejected", "error": "400"}, True),
        ({"status": "unknown", "error": "timeout"}, True),
    ],
)
def test_a_line_closes_when_the_engine_is_done_with_it(
    changes: dict[str, Any], closes: bool
) -> None:
    """Only a line the engine will not touch again in this run is closed (acked)."""
    assert _closes(attrs.evolve(_LINE, **changes)) is closes


async def test_the_guard_rides_out_a_short_outage(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """A call made while Redis is stopped succeeds once it answers, with two notices."""
    server = redis_factory()
    link = RedisLink(server.url, call_timeout=0.2)
    errors = io.StringIO()
    guard = _RedisGuard(Output(stderr=errors), link.url, give_up=30.0)
    try:
        await link.check()
        server.pause()
        async with anyio.create_task_group() as tg:
            tg.start_soon(guard, lambda: link.bounded(link.client.ping))
            await anyio.sleep(0.6)
            server.resume()
        text = errors.getvalue()
        assert "is unreachable" in text
        assert "answers again" in text
    finally:
        server.resume()
        await link.aclose()


async def test_the_guard_gives_up_after_its_bound(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Redis stopped for longer than the bound: a typed error, not a stall."""
    server = redis_factory(password="hunter2")
    link = RedisLink(server.url, call_timeout=0.1)
    guard = _RedisGuard(Output(stderr=io.StringIO()), link.url, give_up=0.5)
    try:
        await link.check()
        server.pause()
        with anyio.fail_after(5), pytest.raises(FleetUnavailableError) as caught:
            await guard(lambda: link.bounded(link.client.ping))
        assert "gave up after 0.5 s" in str(caught.value)
        assert "hunter2" not in str(caught.value)
    finally:
        server.resume()
        await link.aclose()


def test_the_live_view_shows_the_fleet_counts() -> None:
    """Once given the fleet's counts, the view counts every process's lines."""
    lines = [attrs.evolve(_LINE, line=n, status="pending") for n in range(1, 11)]
    console = Console(file=io.StringIO())
    progress = BatchProgress(lines, console, rate_wait=lambda: 0.0, quiet=True)
    assert progress.finished == 0
    progress.show_fleet({"succeeded": 6, "processing": 4}, 6.0)
    assert progress.finished == 6
    assert progress.charged == 6.0
    assert progress.summary_line().startswith("6/10 finished (4 processing, 6 succeeded)")
