"""The fleet batch's Redis data model, against a real redis-server.

Claim timeouts are Redis idle times, which are real time: the takeover tests use a
claim timeout of a few hundred milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import anyio
import pytest
from _redis import RedisServer

from aurous_async._fleet._namespace import Namespace
from aurous_async._fleet._redis_batch import RedisBatch
from aurous_async._fleet._redis_link import RedisLink

from ._stores import API_KEY, BASE_URL

pytestmark = pytest.mark.anyio

BATCH = "0123456789abcdef"
LINES = list(range(1, 41))
TIMEOUT = 0.3


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Callable[..., RedisBatch]]:
    """Build ``RedisBatch`` workers on the test server, each on its own connection."""
    async with AsyncExitStack() as stack:

        def make(name: str, *, claim_timeout: float = TIMEOUT, batch: str = BATCH) -> RedisBatch:
            link = RedisLink(redis_url, call_timeout=2.0)
            worker = RedisBatch(
                link,
                Namespace.for_team(BASE_URL, API_KEY),
                batch,
                consumer=name,
                claim_timeout=claim_timeout,
            )
            stack.push_async_callback(worker.aclose)
            return worker

        yield make


async def test_processes_racing_to_seed_add_each_line_once(
    workers: Callable[..., RedisBatch],
) -> None:
    """Eight processes seeding at once: one seeds, and the lines are claimed once each."""
    racers = [workers(f"w{i}") for i in range(8)]
    seeded: list[bool] = []

    async def seed(worker: RedisBatch) -> None:
        seeded.append(await worker.seed(LINES))

    async with anyio.create_task_group() as tg:
        for worker in racers:
            tg.start_soon(seed, worker)
    assert sorted(seeded) == [False] * 7 + [True]
    claimed: list[int] = []
    for worker in racers:
        result = await worker.claim(len(LINES))
        assert result is not None
        claimed += [c.line for c in result[1]]
    assert sorted(claimed) == LINES


async def test_a_live_owner_keeps_its_lines_and_a_dead_ones_are_taken_over(
    workers: Callable[..., RedisBatch],
) -> None:
    """Renewed claims are never taken; claims left unrenewed past the timeout are."""
    alive, other = workers("alive"), workers("other")
    await alive.seed(LINES[:3])
    result = await alive.claim(3)
    assert result is not None
    entries = [c.entry for c in result[1]]
    for _ in range(4):
        await anyio.sleep(TIMEOUT / 2)
        assert await alive.renew(entries) == []
        taken = await other.claim(10)
        assert taken is not None
        assert taken[1] == []
    await anyio.sleep(TIMEOUT * 1.5)  # "alive" stops renewing: it died
    taken = await other.claim(10)
    assert taken is not None
    assert sorted(c.line for c in taken[1]) == LINES[:3]
    assert sorted(await alive.renew(entries)) == sorted(entries)


async def test_a_taken_over_line_keeps_its_record_and_its_old_owner_cannot_commit(
    workers: Callable[..., RedisBatch],
) -> None:
    """The new owner reads the old owner's record; the old owner's commit is refused."""
    old, new = workers("old"), workers("new")
    await old.seed([7])
    result = await old.claim(1)
    assert result is not None
    (line,) = result[1]
    record = {"id": "img_1", "key": "k-7"}
    assert await old.commit(line, "queued", record, close=False)
    await anyio.sleep(TIMEOUT * 1.5)
    taken = await new.claim(1)
    assert taken is not None
    (again,) = taken[1]
    assert again.line == 7
    assert again.record == record
    assert not await old.commit(line, "succeeded", {**record, "files": ["a.png"]}, close=True)
    assert await new.commit(
        again, "succeeded", {**record, "files": ["b.png"]}, close=True, charged=2.5
    )
    assert not await new.commit(again, "succeeded", record, close=True, charged=2.5)
    state = await new.claim(0)
    assert state is not None
    assert (state[0].closed, state[0].charged, state[0].complete) == (1, 2.5, True)
    assert (await new.records())[7]["files"] == ["b.png"]
    assert await new.counts() == {"succeeded": 1}


async def test_the_batch_is_complete_when_every_line_is_closed(
    workers: Callable[..., RedisBatch],
) -> None:
    """Fleet-wide counts follow every commit; completion comes with the last close."""
    a, b = workers("a"), workers("b")
    await a.seed(LINES)
    mine = (await a.claim(20) or (None, []))[1]
    theirs = (await b.claim(100) or (None, []))[1]
    assert len(mine) + len(theirs) == len(LINES)
    for worker, lines in ((a, mine), (b, theirs)):
        for claimed in lines:
            assert await worker.commit(claimed, "processing", {}, close=False)
    assert await a.counts() == {"processing": len(LINES)}
    for worker, lines in ((a, mine), (b, theirs[:-1])):
        for claimed in lines:
            assert await worker.commit(claimed, "succeeded", {}, close=True, charged=1.0)
    state = await a.claim(0)
    assert state is not None
    assert not state[0].complete
    assert await b.commit(theirs[-1], "failed", {"error": "no"}, close=True)
    state = await a.claim(0)
    assert state is not None
    assert state[0].complete
    assert state[0].charged == len(LINES) - 1
    assert await b.counts() == {"succeeded": len(LINES) - 1, "failed": 1}


async def test_a_batch_lost_by_redis_is_seeded_again_whole(
    workers: Callable[..., RedisBatch], redis_server: RedisServer
) -> None:
    """After FLUSHALL, claim says so, seeding brings every line back, stale owners lose."""
    a = workers("a")
    await a.seed(LINES)
    held = (await a.claim(5) or (None, []))[1]
    for claimed in held[:2]:
        assert await a.commit(claimed, "succeeded", {}, close=True)
    redis_server.flushall()
    assert await a.claim(5) is None
    assert not await a.commit(held[2], "succeeded", {}, close=True)
    assert await a.renew([c.entry for c in held[2:]]) == [c.entry for c in held[2:]]
    assert await a.seed(LINES)
    lines: list[int] = []
    while True:
        result = await a.claim(16)
        assert result is not None
        if not result[1]:
            break
        lines += [c.line for c in result[1]]
    assert sorted(lines) == LINES


async def test_a_closed_line_is_reopened_once(workers: Callable[..., RedisBatch]) -> None:
    """Two processes reopening the same unknown line put it back in the stream once."""
    a, b = workers("a"), workers("b")
    await a.seed([1, 2])
    for line in (await a.claim(2) or (None, []))[1]:
        assert await a.commit(line, "unknown", {"error": "timeout"}, close=True)
    assert [await a.reopen(1, "unknown"), await b.reopen(1, "unknown")] == [True, False]
    assert not await b.reopen(2, "succeeded")
    result = await b.claim(5)
    assert result is not None
    state, claimed = result
    assert [c.line for c in claimed] == [1]
    assert claimed[0].record == {"error": "timeout"}
    assert (state.closed, state.complete) == (1, False)
    assert await b.statuses() == {1: "pending", 2: "unknown"}


async def test_different_batches_on_one_redis_never_mix(
    workers: Callable[..., RedisBatch],
) -> None:
    """Two batch ids keep their own lines."""
    one, two = workers("a"), workers("b", batch="fedcba9876543210")
    await one.seed([1, 2])
    await two.seed([5])
    first = await one.claim(10)
    second = await two.claim(10)
    assert first is not None
    assert second is not None
    assert [c.line for c in first[1]] == [1, 2]
    assert [c.line for c in second[1]] == [5]
