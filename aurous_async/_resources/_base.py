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
    Sequence,
)
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import attrs

from .._errors import InvalidParameterError
from .._requester import Call, Reply, Requester
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
    built) and attach the request id."""
    return _model_reading(cls)[0](reply)


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


class AsyncPager(Generic[T]):
    """Items of a list endpoint, fetched page by page as they are iterated.

    ``async for item in pager`` walks every page transparently; ``pages()`` yields the
    pages themselves; ``collect()`` gathers items into a list. Nothing is fetched until
    iteration starts, and every iteration starts again from the first page.
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

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncGenerator[T, None]:
        async with contextlib.aclosing(self.pages()) as pages:
            async for page in pages:
                for item in page.data:
                    yield item

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """Yield each page in turn, following ``next_cursor`` until the last one."""
        cursor = self._first_cursor
        while True:
            page = await self._fetch(cursor)
            yield page
            if not page.has_more or not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def collect(self, max_items: int | None = None) -> builtins.list[T]:
        """Gather items into a list, stopping after ``max_items`` when given."""
        out: builtins.list[T] = []
        if max_items is not None and max_items <= 0:
            return out
        async with contextlib.aclosing(self._items()) as items:
            async for item in items:
                out.append(item)
                if max_items is not None and len(out) >= max_items:
                    break
        return out


def page_from(reply: Reply, cls: type[T], *, cursor_field: str = "next_cursor") -> Page[T]:
    """Decode a ``{"object": "list", "data": [...], "has_more", "next_cursor"}`` envelope."""
    body = reply.data
    if not isinstance(body, dict):
        raise TypeError(f"expected a list envelope, got {type(body).__name__}")
    items: builtins.list[Any] = body.get("data") or []
    data = [_attach_request_id(structure(item, cls), reply.request_id) for item in items]
    cursor = body.get(cursor_field)
    return Page(
        data=data,
        has_more=bool(body.get("has_more")),
        next_cursor=cursor if isinstance(cursor, str) else None,
        request_id=reply.request_id,
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
