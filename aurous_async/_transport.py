"""The one I/O seam: the only client module that imports aiohttp.

It sends one HTTP request and returns a small immutable ``Response``. Everything that can
go wrong below HTTP (refused or dropped connections, truncated bodies, per-attempt
socket timeouts) is translated here, and only here, into ``APIConnectionError`` or
``APITimeoutError``. It knows nothing about retries, rate limits or the error envelope.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from ._errors import APIConnectionError, APITimeoutError

__all__ = ["Multipart", "Part", "Response", "Transport"]

#: Redirects followed per request (the image output route may answer 302, legacy routes 308).
MAX_REDIRECTS = 5
#: Headers that must never follow a redirect to another origin.
_CREDENTIAL_HEADERS = ("X-Api-Key", "Authorization", "Cookie")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LOCATION = istr("Location")
_REQUEST_ID = istr("Aurous-Request-Id")


class Response(NamedTuple):
    """One HTTP response, fully read (a tuple: one is made per response).

    Attributes:
        status: the HTTP status of the final response.
        headers: its headers (case-insensitive, read-only).
        body: the raw body bytes.
        request_id: the ``Aurous-Request-Id`` header, when present.
        url: the URL that produced the final response (after redirects).
        history: the headers of redirect responses that led here, oldest first.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    request_id: str | None
    url: str
    history: tuple[Mapping[str, str], ...] = ()

    def __repr__(self) -> str:  # no headers or body: they may carry secrets
        return f"Response(status={self.status}, request_id={self.request_id!r}, url={self.url!r})"


@attrs.frozen
class Part:
    """One field of a ``multipart/form-data`` body."""

    name: str
    value: str | bytes = attrs.field(repr=False)
    filename: str | None = None
    content_type: str | None = None


@attrs.frozen
class Multipart:
    """A ``multipart/form-data`` body, rebuilt into a fresh form on every attempt."""

    parts: tuple[Part, ...]


def _form(body: Multipart) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for part in body.parts:
        form.add_field(
            part.name, part.value, filename=part.filename, content_type=part.content_type
        )
    return form


def _freeze(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers))


class Transport:
    """A bounded pool of keep-alive connections, shared by every task of one client.

    The ``aiohttp.ClientSession`` is created on first use, inside the running event loop,
    and closed by ``aclose()``.

    Args:
        max_connections: the pool size across all hosts.
        max_connections_per_host: the pool size per host (0 for no separate cap).
        keepalive_expiry: seconds an idle connection is kept open.
        connect_timeout: seconds allowed to open one connection.
        read_timeout: seconds allowed for the response of one request: for the whole of
            an API response, for each chunk of a download (``send(download=True)``).
        user_agent: sent on every request.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
        keepalive_expiry: float = 15.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        user_agent: str,
    ) -> None:
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        self._keepalive_expiry = keepalive_expiry
        # One timer per request for an API response (small, read at once), where a
        # per-chunk timeout would re-arm its timer on every read; per chunk for downloads,
        # whose total time grows with their size.
        self._timeout = aiohttp.ClientTimeout(total=read_timeout, sock_connect=connect_timeout)
        self._download_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        #: Seconds within which one attempt of an API call (not a download) has ended,
        #: answered or with ``APITimeoutError``: aiohttp's total timer covers the pool
        #: wait, the connect and the whole response, and may fire up to a second late (it
        #: rounds longer timeouts up to whole seconds of loop time).
        self.attempt_bound = math.inf if read_timeout is None else read_timeout + 1.0
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        #: The event loop the pool was made in, once used: calls must run in it (aiohttp
        #: refuses a request from another loop).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session else "idle"
        return f"<Transport {state} max_connections={self._max_connections}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client has been closed; create a new one")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                keepalive_timeout=self._keepalive_expiry,
            )
            self.loop = asyncio.get_running_loop()
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"User-Agent": self._user_agent},
                auto_decompress=True,
                raise_for_status=False,
                # The API authenticates by key: a cookie set by any response (or by a
                # storage host after a redirect) is never stored or sent back.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close every pooled connection; idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Sequence[tuple[str, str]] | None = None,
        json_body: object = None,
        content: bytes | Multipart | None = None,
        download: bool = False,
    ) -> Response:
        """Send one request and read the whole response.

        ``download`` marks a response that may be large (output bytes): its read timeout
        applies to each chunk rather than to the whole body.

        Redirects are followed by hand so that credentials are dropped when a redirect
        leaves the origin (the image output route may redirect to a storage host).

        Raises:
            APITimeoutError: a connect or read timeout of this attempt.
            APIConnectionError: the connection failed, dropped, or the body was cut short.
        """
        session = self._get_session()
        target = URL(url)
        if params:
            target = target.update_query(list(params))
            url = str(target)
        # aiohttp only reads the headers; a copy is made when they must change.
        send_headers: Mapping[str, str] | CIMultiDict[str] = headers
        data: bytes | aiohttp.FormData | None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            send_headers = CIMultiDict(headers)
            send_headers.setdefault("Content-Type", "application/json")
        elif isinstance(content, Multipart):
            data = _form(content)
        else:
            data = content
        timeout = self._download_timeout if download else self._timeout
        history: list[Mapping[str, str]] = []
        try:
            for _ in range(MAX_REDIRECTS + 1):
                async with session.request(
                    method,
                    target,
                    headers=send_headers,
                    data=data,
                    allow_redirects=False,
                    timeout=timeout,
                ) as resp:
                    # Already a read-only, case-insensitive view of this response's own
                    # headers: no copy needed.
                    resp_headers = resp.headers
                    status = resp.status
                    location = resp_headers.get(_LOCATION) if status in _REDIRECT_STATUSES else None
                    if not location:
                        # ``tuple.__new__`` skips the NamedTuple's generated ``__new__``
                        # (~0.2 us a call).
                        fields = (
                            status,
                            resp_headers,
                            await resp.read(),
                            resp_headers.get(_REQUEST_ID),
                            url,
                            tuple(history),
                        )
                        return tuple.__new__(Response, fields)
                    await resp.read()
                    history.append(_freeze(resp_headers))
                next_target = target.join(URL(location))
                send_headers = CIMultiDict(send_headers)
                if next_target.origin() != target.origin():
                    for name in _CREDENTIAL_HEADERS:
                        send_headers.popall(name, None)
                if status == 303 or (status in (301, 302) and method != "HEAD"):
                    # RFC 9110: a 303 (and, by browser practice, 301/302) becomes a GET.
                    method, data = "GET", None
                    send_headers.popall("Content-Type", None)
                elif isinstance(content, Multipart):
                    data = _form(content)
                target = next_target
                url = str(target)
            raise APIConnectionError(f"too many redirects (more than {MAX_REDIRECTS})")
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(
                f"{method} {target.path}: timed out ({_describe(exc)})",
                maybe_sent=not isinstance(exc, aiohttp.ConnectionTimeoutError),
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise APIConnectionError(
                f"{method} {target.path}: {_describe(exc)}",
                # A connection that never opened carried nothing.
                maybe_sent=not isinstance(exc, aiohttp.ClientConnectorError),
            ) from exc


def _describe(exc: BaseException) -> str:
    """Name the low-level failure without echoing request headers."""
    text = str(exc) if not isinstance(exc, aiohttp.ClientResponseError) else exc.message
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
