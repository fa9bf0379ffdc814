"""List calls, openai-style: ``await`` gives the first page, ``async for`` every item."""

from __future__ import annotations

import pytest
from _sdk_helpers import emulated, settle

from aurous_async import AsyncAurous, AsyncPager, Page
from aurous_async.models import Generation

pytestmark = pytest.mark.anyio


async def _five_generations(client: AsyncAurous) -> list[str]:
    """Create five generations; return their ids newest first (the list order)."""
    created = [await client.images.create(prompt=f"p{i}") for i in range(5)]
    return [g.id for g in reversed(created)]


async def test_await_gives_the_first_page() -> None:
    """Awaiting a list call fetches one page, with its cursor and request id."""
    async with emulated() as (emu, client):
        newest_first = await _five_generations(client)
        before = len(emu.requests)
        page = await client.images.list(limit=2)
        assert isinstance(page, Page)
        assert [g.id for g in page.data] == newest_first[:2]
        assert page.has_more
        assert page.next_cursor == newest_first[1]
        assert page.has_next_page()
        assert page.request_id
        assert len(emu.requests) == before + 1


async def test_next_page_walks_to_the_end() -> None:
    """``next_page()`` follows the cursor until ``has_next_page()`` is false."""
    async with emulated() as (_, client):
        newest_first = await _five_generations(client)
        page = await client.images.list(limit=2)
        sizes, seen = [len(page.data)], [g.id for g in page.data]
        while page.has_next_page():
            page = await page.next_page()
            sizes.append(len(page.data))
            seen += [g.id for g in page.data]
        assert sizes == [2, 2, 1]
        assert seen == newest_first
        assert not page.has_more
        assert page.next_cursor is None


async def test_next_page_after_the_last_page_raises() -> None:
    """Asking the last page for the next one is a clear ``RuntimeError``, as in openai."""
    async with emulated() as (emu, client):
        await _five_generations(client)
        last = await client.images.list(limit=10)
        assert not last.has_next_page()
        before = len(emu.requests)
        with pytest.raises(RuntimeError, match="last page"):
            await last.next_page()
        assert len(emu.requests) == before


async def test_async_for_yields_every_item_once() -> None:
    """Iterating the pager walks every page and yields each item exactly once."""
    async with emulated() as (emu, client):
        newest_first = await _five_generations(client)
        before = len(emu.requests)
        seen = [g.id async for g in client.images.list(limit=2)]
        assert seen == newest_first
        assert len(emu.requests) == before + 3


async def test_async_for_over_a_page_continues_to_later_pages() -> None:
    """Iterating a page yields its items, then those of every later page."""
    async with emulated() as (_, client):
        newest_first = await _five_generations(client)
        first = await client.images.list(limit=2)
        second = await first.next_page()
        assert [g.id async for g in second] == newest_first[2:]
        assert [g.id async for g in first] == newest_first


async def test_every_await_starts_again_from_the_first_page() -> None:
    """A pager awaited twice fetches the first page twice; it holds no position."""
    async with emulated() as (_, client):
        newest_first = await _five_generations(client)
        pager: AsyncPager[Generation] = client.images.list(limit=3)
        one, two = await pager, await pager
        assert [g.id for g in one.data] == [g.id for g in two.data] == newest_first[:3]
        assert [g.id async for g in pager] == newest_first


@pytest.mark.parametrize("kind", ["characters", "usage_events", "loras"])
async def test_every_list_call_can_be_awaited(kind: str) -> None:
    """Each resource's list call gives a ``Page`` when awaited, matching its iteration."""
    async with emulated() as (emu, client):
        await _five_generations(client)
        settle(emu)  # every job finished: the ledger stops growing between the two reads
        pager: AsyncPager[object] = {
            "characters": client.characters.list,
            "usage_events": client.usage.events.list,
            "loras": client.loras.list,
        }[kind]()
        page = await pager
        assert isinstance(page, Page)
        items = [item async for item in pager]
        if not page.has_next_page():
            assert list(page.data) == items
        assert list(page.data) == items[: len(page.data)]


async def test_a_page_built_by_hand_has_no_next_page() -> None:
    """A ``Page`` not fetched by a list call claims no next page, even with ``has_more``."""
    page: Page[int] = Page(data=[1, 2], has_more=True, next_cursor="c")
    assert not page.has_next_page()
    with pytest.raises(RuntimeError, match="has_next_page"):
        await page.next_page()
    assert [item async for item in page] == [1, 2]
