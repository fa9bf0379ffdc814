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
import ssl as _ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import NamedTuple, Protocol

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from ._config import DEFAULT_MAX_RESPONSE_BYTES
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    EventLoopMismatchError,
    ResponseTooLargeError,
)

__all__ = ["BodySink", "Multipart", "Part", "Response", "Transport", "same_origin"]

#: Redirects followed per request (the image output route may answer 302, legacy routes 308).
MAX_REDIRECTS = 5
#: Headers that must never follow a redirect to another origin.
_CREDENTIAL_HEADERS = ("X-Api-Key", "Authorization", "Cookie")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LOCATION = istr("Location")
_REQUEST_ID = istr("Aurous-Request-Id")
_CONTENT_LENGTH = istr("Content-Length")
_CONTENT_ENCODING = istr("Content-Encoding")


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


class BodySink(Protocol):
    """Takes a 2xx download's body chunk by chunk, instead of the transport reading it
    whole (streamed output saves); error answers are still read whole."""

    def request_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The headers to send on this attempt (``headers`` plus a ``Range`` to resume)."""
        ...

    async def receive(
        self, status: int, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> None:
        """Consume one 2xx body; a failure while iterating ``chunks`` is translated by the
        transport like any other. Must not raise ``OSError`` of its own (it would be
        taken for a network failure)."""
        ...


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
    and closed by ``aclose()``. It serves that loop only: a request from any other loop
    raises ``EventLoopMismatchError`` before anything is sent.

    Args:
        max_connections: the pool size across all hosts.
        max_connections_per_host: the pool size per host (0 for no separate cap).
        keepalive_expiry: seconds an idle connection is kept open.
        connect_timeout: seconds allowed to open one connection.
        read_timeout: seconds allowed for the response of one request: for the whole of
            an API response, for each chunk of a download (``send(download=True)``).
        user_agent: sent on every request.
        max_response_bytes: the largest API answer read (after decompression); a larger
            one raises ``ResponseTooLargeError`` unread. Downloads are not capped.
        proxy: an ``http://`` or ``https://`` proxy URL for every request, credentials
            (``user:password@``) included; it is never shown in a repr or an error.
        trust_env: without ``proxy``, route requests through the proxies named by
            ``HTTPS_PROXY`` / ``HTTP_PROXY`` except for the hosts of ``NO_PROXY`` (read
            when the pool is made).
        ssl: ``True`` verifies servers against the default trust store; an
            ``ssl.SSLContext`` supplies custom CAs or client certificates; ``False``
            turns verification off (a local test server only).

    Raises:
        TypeError: ``ssl`` or ``proxy`` has the wrong type.
        ValueError: ``proxy`` is not an ``http://`` or ``https://`` URL.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
        keepalive_expiry: float = 15.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: _ssl.SSLContext | bool = True,
    ) -> None:
        if not isinstance(ssl, (bool, _ssl.SSLContext)):
            raise TypeError(
                f"ssl must be an ssl.SSLContext, True or False, not {type(ssl).__name__}"
            )
        self._ssl = ssl
        self._proxy = _proxy_url(proxy)
        self._trust_env = trust_env and proxy is None
        #: Proxies from the environment, by target; ``None`` when none applies.
        self._env_proxies: _EnvProxies | None = None
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
        self._max_response_bytes = max_response_bytes
        self._max_response_digits = len(str(max_response_bytes))
        self._session: aiohttp.ClientSession | None = None
        #: The event loop the pool was made in, once used: calls must run in it (aiohttp
        #: pools cannot move), and a call from another one is refused.
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session else "idle"
        return f"<Transport {state} max_connections={self._max_connections}>"

    @property
    def closed(self) -> bool:
        return self._closed

    async def _session_here(self) -> aiohttp.ClientSession:
        """The session, made on first use; refused when closed or in another loop."""
        if self._closed:
            raise RuntimeError("this client has been closed; create a new one")
        running = asyncio.get_running_loop()
        first = self.loop
        if first is not None and first is not running:
            stale = self._session
            if first.is_closed() and stale is not None:
                # Nothing can use that pool again; closing it now (it needs no loop once
                # its own is closed) spares the user an unclosed-session warning.
                self._session = None
                await stale.close()
            raise EventLoopMismatchError(_mismatch_message(first))
        if self._session is None:
            self._session = self._new_session()
            self.loop = running
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        if self._trust_env:
            self._env_proxies = _EnvProxies.from_environment()
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                keepalive_timeout=self._keepalive_expiry,
                ssl=self._ssl,
            ),
            timeout=self._timeout,
            headers={"User-Agent": self._user_agent},
            auto_decompress=True,
            raise_for_status=False,
            # The API authenticates by key: a cookie set by any response (or by a
            # storage host after a redirect) is never stored or sent back.
            cookie_jar=aiohttp.DummyCookieJar(),
            proxy=self._proxy,
            # Environment proxies are looked up here, once per origin: aiohttp's own
            # lookup costs two thread hops per request and also reads ~/.netrc.
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close every pooled connection; idempotent.

        Raises:
            EventLoopMismatchError: the pool belongs to another event loop that is still
                open; close it from there.
        """
        self._closed = True
        session = self._session
        if session is None or session.closed:
            self._session = None
            return
        first = self.loop
        if first is not None and first is not asyncio.get_running_loop() and not first.is_closed():
            raise EventLoopMismatchError(_mismatch_message(first))
        self._session = None
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
        sink: BodySink | None = None,
    ) -> Response:
        """Send one request and read the whole response.

        ``download`` marks a response that may be large (output bytes): its read timeout
        applies to each chunk rather than to the whole body.

        Redirects are followed by hand so that credentials are dropped when a redirect
        leaves the origin (the image output route may redirect to a storage host).

        ``sink`` (with ``download``): a 2xx body goes to ``sink.receive`` in chunks as it
        arrives, and the ``Response`` carries an empty body; the sink also adds its
        headers to the request.

        Raises:
            APITimeoutError: a connect or read timeout of this attempt.
            APIConnectionError: the connection failed, dropped, or the body was cut short.
            ResponseTooLargeError: an API answer (not a download) is larger than
                ``max_response_bytes``; its connection is closed.
        """
        session = self._session
        # Every call checks its loop (the pool serves one): a mismatch is refused before
        # aiohttp would fail in it, sending half a request or none.
        if session is None or asyncio.get_running_loop() is not self.loop:
            session = await self._session_here()
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
        if sink is not None:
            send_headers = sink.request_headers(send_headers)
        timeout = self._download_timeout if download else self._timeout
        history: list[Mapping[str, str]] = []
        env_proxies = self._env_proxies
        try:
            for _ in range(MAX_REDIRECTS + 1):
                async with session.request(
                    method,
                    target,
                    headers=send_headers,
                    data=data,
                    allow_redirects=False,
                    timeout=timeout,
                    proxy=None if env_proxies is None else env_proxies.for_url(target),
                ) as resp:
                    # Already a read-only, case-insensitive view of this response's own
                    # headers: no copy needed.
                    resp_headers = resp.headers
                    status = resp.status
                    location = resp_headers.get(_LOCATION) if status in _REDIRECT_STATUSES else None
                    if not location:
                        length = resp_headers.get(_CONTENT_LENGTH)
                        # Fewer digits than the cap: surely below it, checked without int().
                        if sink is not None and 200 <= status < 300:
                            await sink.receive(status, resp_headers, resp.content.iter_any())
                            body = b""
                        elif download or (
                            length is not None
                            and len(length) < self._max_response_digits
                            and _CONTENT_ENCODING not in resp_headers
                        ):
                            body = await resp.read()
                        else:
                            body = await self._read_capped(resp, method, target, send_headers)
                        # ``tuple.__new__`` skips the NamedTuple's generated ``__new__``
                        # (~0.2 us a call).
                        fields = (
                            status,
                            resp_headers,
                            body,
                            resp_headers.get(_REQUEST_ID),
                            url,
                            tuple(history),
                        )
                        return tuple.__new__(Response, fields)
                    if download:
                        await resp.read()
                    else:
                        await self._read_capped(resp, method, target, send_headers)
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

    async def _read_capped(
        self,
        resp: aiohttp.ClientResponse,
        method: str,
        target: URL,
        headers: Mapping[str, str],
    ) -> bytes:
        """An API answer's body, refused past ``max_response_bytes`` before it is read
        whole: at once when its ``Content-Length`` says so, else as soon as it grows past.

        Raises:
            ResponseTooLargeError: the body is larger; its connection is closed.
        """
        if method == "HEAD":
            return await resp.read()  # announces a length but has no body
        limit = self._max_response_bytes
        announced = resp.content_length  # compressed: the decompressed size is checked below
        if announced is not None and announced > limit:
            raise self._too_large(resp, method, target, headers, announced)
        body = bytearray()
        async for chunk in resp.content.iter_any():
            body += chunk
            if len(body) > limit:
                raise self._too_large(resp, method, target, headers, None)
        return bytes(body)

    def _too_large(
        self,
        resp: aiohttp.ClientResponse,
        method: str,
        target: URL,
        headers: Mapping[str, str],
        size: int | None,
    ) -> ResponseTooLargeError:
        # The unread rest stays on the wire: the connection is closed, never pooled.
        resp.close()
        limit = self._max_response_bytes
        route = f"{method} {target.path}"
        if size is not None:
            what = f"announced {size} bytes, more than max_response_bytes={limit}; it was not read"
        else:
            what = f"grew past max_response_bytes={limit} while being read; the rest was not read"
        return ResponseTooLargeError(
            f"{route}: the {resp.status} response {what}",
            route=route,
            status=resp.status,
            size=size,
            limit=limit,
            request_id=resp.headers.get(_REQUEST_ID),
            idempotency_key=headers.get("Idempotency-Key"),
        )


def same_origin(url: str, other: str) -> bool:
    """Whether two absolute URLs share scheme, host and port (default ports filled in)."""
    return URL(url).origin() == URL(other).origin()


def _mismatch_message(first: asyncio.AbstractEventLoop) -> str:
    state = "which has since closed" if first.is_closed() else "which is still open"
    return (
        f"this client was first used in another event loop, {state}, and its "
        "connections belong to that loop; nothing was sent. Create the client inside "
        "the event loop that uses it (one client per asyncio.run())"
    )


def _proxy_url(proxy: object) -> URL | None:
    """Check a ``proxy=`` value; the messages never echo it (it may hold a password)."""
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
    try:
        url = URL(proxy)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError("proxy must be an http:// or https:// URL with a host")
    return url


class _EnvProxies:
    """The proxy for each target origin, as ``HTTP(S)_PROXY`` and ``NO_PROXY`` say."""

    __slots__ = ("_by_origin", "_by_scheme")

    def __init__(self, by_scheme: dict[str, URL]) -> None:
        self._by_scheme = by_scheme
        self._by_origin: dict[tuple[str, str | None, int | None], URL | None] = {}

    @classmethod
    def from_environment(cls) -> _EnvProxies | None:
        """The environment's proxies, or ``None`` when it names none (the usual case)."""
        by_scheme: dict[str, URL] = {}
        for scheme, value in urllib.request.getproxies().items():
            if scheme in ("http", "https"):
                try:
                    url = _proxy_url(value if "://" in value else f"http://{value}")
                except ValueError:
                    continue  # an unusable value routes nothing, as in urllib
                if url is not None:
                    by_scheme[scheme] = url
        return cls(by_scheme) if by_scheme else None

    def for_url(self, url: URL) -> URL | None:
        """The proxy for ``url``: ``None`` to go direct (``NO_PROXY`` or no proxy set)."""
        key = (url.scheme, url.host, url.port)
        try:
            return self._by_origin[key]
        except KeyError:
            pass
        proxy = self._by_scheme.get(url.scheme)
        if proxy is not None and url.host and urllib.request.proxy_bypass(url.host):
            proxy = None
        if len(self._by_origin) >= 256:
            self._by_origin.clear()
        self._by_origin[key] = proxy
        return proxy


def _describe(exc: BaseException) -> str:
    """Name the low-level failure without echoing request headers."""
    text = str(exc) if not isinstance(exc, aiohttp.ClientResponseError) else exc.message
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
