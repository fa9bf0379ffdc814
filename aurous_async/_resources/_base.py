"""Plumbing shared by every resource: the call helper, path building, cursor pagination."""

from __future__ import annotations

import builtins
import contextlib
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Sequence,
)
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import attrs

from .._errors import InvalidParameterError
from .._requester import Call, Reply, Requester, invalid_body_error
from .._typed_body import body_parser
from .._wire import decoder, structure

__all__ = ["AsyncPager", "Page", "Resource", "path_id"]

T = TypeVar("T")


def path_id(value: str, param: str = "id") -> str:
    """Check an id (or slug) and quote it for use as one path segment."""
    if type(value) is str and value.isidentifier() and value.isascii():
        return value  # the usual id ("img_01..."): letters, digits and "_", nothing to quote
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(f"{param} must be a non-empty string", param=param)
    if _UNRESERVED.fullmatch(value):
        return value  # nothing to quote (e.g. an id that starts with a digit, a slug)
    return quote(value, safe="")


#: Characters ``quote`` never escapes.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


class Resource:
    """Base of every ``client.<resource>``: sends ``Call``s through the shared requester."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _send(self, call: Call) -> Awaitable[Reply]:
        return self._requester.send(call)

    def _get_model(self, call: Call, cls: type[T]) -> Coroutine[Any, Any, T]:
        """Send ``call`` and decode its reply into ``cls``."""
        decode, parse = _model_reading(cls)
        return self._requester.send_and_decode(call, decode, parse)


def decode(reply: Reply, cls: type[T]) -> T:
    """Structure a reply's JSON into ``cls`` (or take the model ``body_parser(cls)``
    built) and attach the request id.

    Raises:
        APIResponseValidationError: the body does not fit ``cls``.
    """
    try:
        return _model_reading(cls)[0](reply)
    except Exception as exc:
        raise invalid_body_error(reply.call, reply.response, exc) from exc


def _model_reading(cls: type[T]) -> tuple[Callable[[Reply], T], Callable[[bytes], object]]:
    """How a reply becomes a ``cls``: its body parser and its decoder (made once)."""
    known = _READING.get(cls)
    if known is None:
        structure_data = decoder(cls)

        def decode_reply(reply: Reply) -> T:
            data = reply.data
            # ``body_parser(cls)`` may have built the model already; JSON data never is one.
            value = data if type(data) is cls else structure_data(data)
            return _attach_request_id(value, reply.response.request_id)

        known = _READING[cls] = (decode_reply, body_parser(cls))
    return known


_READING: dict[type, tuple[Callable[[Reply], Any], Callable[[bytes], object]]] = {}


def with_request_id(value: T, request_id: str | None) -> T:
    """Return ``value`` carrying ``request_id`` when its model has the field."""
    if request_id is not None and _has_request_id(type(value)):
        return attrs.evolve(value, request_id=request_id)  # type: ignore[misc]
    return value


def _attach_request_id(fresh: T, request_id: str | None) -> T:
    """``with_request_id`` for a value just decoded, which nothing else references yet.

    It sets the field in place instead of copying the model (``attrs.evolve`` re-runs
    ``__init__`` over every field): the result is the same, an instance with the id.
    """
    if request_id is not None and _has_request_id(type(fresh)):
        object.__setattr__(fresh, "request_id", request_id)
    return fresh


#: Whether a class is a model with a ``request_id`` field, by class.
_REQUEST_ID_FIELD: dict[type, bool] = {}


def _has_request_id(cls: type) -> bool:
    known = _REQUEST_ID_FIELD.get(cls)
    if known is None:
        known = _REQUEST_ID_FIELD[cls] = attrs.has(cls) and "request_id" in attrs.fields_dict(cls)
    return known


@attrs.frozen
class Page(Generic[T]):
    """One page of a cursor-paginated list.

    ``await client.<resource>.list()`` returns the first page; ``await page.next_page()``
    the one after it. ``async for item in page`` yields this page's items and then those
    of every later page (``page.data`` holds this page's alone).

    Attributes:
        data: the items of this page, in the server's order.
        has_more: whether another page follows.
        next_cursor: the cursor of the next page (``None`` at the end).
        request_id: the ``Aurous-Request-Id`` of the call that fetched it.
    """

    data: Sequence[T]
    has_more: bool
    next_cursor: str | None
    request_id: str | None = None
    # Where the page came from (its pager and the cursor that fetched it): set by the
    # pager, so a page built by hand has no next page to fetch.
    _source: tuple[AsyncPager[T], str | None] | None = attrs.field(
        default=None, init=False, repr=False, eq=False
    )

    def has_next_page(self) -> bool:
        """Whether ``next_page()`` has a page to fetch."""
        source = self._source
        return (
            source is not None
            and self.has_more
            and bool(self.next_cursor)
            # A server repeating a cursor would page forever: treat it as the end.
            and self.next_cursor != source[1]
        )

    async def next_page(self) -> Page[T]:
        """Fetch the page after this one.

        Raises:
            RuntimeError: this is the last page (check ``has_next_page()`` first), or the
                page was not fetched by a list call.
        """
        if not self.has_next_page():
            raise RuntimeError(
                "no next page: this is the last page of the list; "
                "check page.has_next_page() before calling page.next_page()"
            )
        assert self._source is not None
        return await self._source[0]._fetch_page(self.next_cursor)

    def __aiter__(self) -> AsyncIterator[T]:
        return _items(_pages_from(self))


async def _pages_from(page: Page[T]) -> AsyncGenerator[Page[T], None]:
    """``page`` and every page after it."""
    yield page
    while page.has_next_page():
        page = await page.next_page()
        yield page


async def _items(pages: AsyncGenerator[Page[T], None]) -> AsyncGenerator[T, None]:
    """The items of ``pages``, in order (closing ``pages`` when stopped early)."""
    async with contextlib.aclosing(pages):
        async for page in pages:
            for item in page.data:
                yield item


class AsyncPager(Generic[T]):
    """A list call: await it for the first page, or iterate it for every item.

    ``page = await pager`` fetches the first ``Page`` (then ``await page.next_page()``
    while ``page.has_next_page()``); ``async for item in pager`` walks every page
    transparently; ``pages()`` yields the pages themselves; ``collect()`` gathers items
    into a list. Nothing is fetched until it is awaited or iterated, and every await or
    iteration starts again from the first page.
    """

    def __init__(
        self,
        fetch: Callable[[str | None], Awaitable[Page[T]]],
        *,
        first_cursor: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._first_cursor = first_cursor

    def __repr__(self) -> str:
        return f"<AsyncPager {getattr(self._fetch, '__qualname__', self._fetch)!s}>"

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self._fetch_page(self._first_cursor).__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return _items(self.pages())

    async def _fetch_page(self, cursor: str | None) -> Page[T]:
        page = await self._fetch(cursor)
        object.__setattr__(page, "_source", (self, cursor))
        return page

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """Yield each page in turn, following ``next_cursor`` until the last one."""
        async with contextlib.aclosing(_pages_from(await self)) as pages:
            async for page in pages:
                yield page

    async def collect(self, max_items: int | None = None) -> builtins.list[T]:
        """Gather items into a list, stopping after ``max_items`` when given."""
        out: builtins.list[T] = []
        if max_items is not None and max_items <= 0:
            return out
        async with contextlib.aclosing(_items(self.pages())) as items:
            async for item in items:
                out.append(item)
                if max_items is not None and len(out) >= max_items:
                    break
        return out


def page_from(reply: Reply, cls: type[T], *, cursor_field: str = "next_cursor") -> Page[T]:
    """Decode a ``{"object": "list", "data": [...], "has_more", "next_cursor"}`` envelope.

    Raises:
        APIResponseValidationError: the body is not such an envelope of ``cls`` items.
    """
    try:
        body = reply.data
        if not isinstance(body, dict):
            raise ValueError(f"response does not fit a list envelope: got {_kind(body)} @ $")
        items = body.get("data") or []
        if not isinstance(items, builtins.list):
            raise ValueError(f"response does not fit a list envelope: got {_kind(items)} @ $.data")
        data = _items_of(items, cls, reply.request_id, "$.data")
        cursor = body.get(cursor_field)
        return Page(
            data=data,
            has_more=bool(body.get("has_more")),
            next_cursor=cursor if isinstance(cursor, str) else None,
            request_id=reply.request_id,
        )
    except Exception as exc:
        raise invalid_body_error(reply.call, reply.response, exc) from exc


def bare_list_page(reply: Reply, cls: type[T]) -> Page[T]:
    """Decode a bare JSON array of ``cls`` items as one page (no cursor).

    Raises:
        APIResponseValidationError: the body is not an array of ``cls`` items.
    """
    try:
        items = reply.data
        if not isinstance(items, builtins.list):
            raise ValueError(f"response does not fit a list: got {_kind(items)} @ $")
        data = _items_of(items, cls, reply.request_id, "$")
    except Exception as exc:
        raise invalid_body_error(reply.call, reply.response, exc) from exc
    return Page(data=data, has_more=False, next_cursor=None, request_id=reply.request_id)


def _items_of(
    items: builtins.list[Any], cls: type[T], request_id: str | None, at: str
) -> builtins.list[T]:
    """Each item decoded into ``cls``; a mismatch is named by its path from the body."""
    try:
        return [_attach_request_id(structure(item, cls), request_id) for item in items]
    except ValueError as exc:
        raise _located(exc, items, cls, at) from exc


def _located(error: ValueError, items: builtins.list[Any], cls: type, at: str) -> ValueError:
    """``error`` with its paths made relative to the body: the first item that does not
    fit is found again (only after a failure) to name its index."""
    for index, item in enumerate(items):
        try:
            structure(item, cls)
        except ValueError as exc:
            where, text = f"{at}[{index}]", str(exc)
            return ValueError(
                text.replace(" @ $", f" @ {where}") if " @ $" in text else f"{text} @ {where}"
            )
    return error


def _kind(value: object) -> str:
    """How a JSON value reads in an error: its JSON type."""
    if value is None:
        return "null"
    return {dict: "an object", builtins.list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def params(**values: object) -> builtins.list[tuple[str, str]]:
    """Query parameters in order, without ``None``s; booleans as ``true``/``false``."""
    out: builtins.list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        elif isinstance(value, (builtins.list, tuple)):
            out.extend((name, str(item)) for item in value)
        else:
            out.append((name, str(value)))
    return out


def body(**values: object) -> dict[str, object]:
    """A JSON body without the fields left unset (the API refuses unknown fields, and an
    explicit ``null`` is not the same as an omitted field)."""
    return {name: value for name, value in values.items() if value is not None}
