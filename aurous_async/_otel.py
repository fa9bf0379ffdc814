"""Spans and metrics through the OpenTelemetry API (the ``otel`` extra).

Imported only when a client is built with ``tracing=True`` and ``opentelemetry-api`` is
installed (``_telemetry``). The application configures the SDK; until it sets a tracer
or meter provider every call takes the plain path (one check per call).

Recorded, following the semantic conventions for HTTP clients:

- a CLIENT span per logical call, ``{METHOD} {url.template}``, with ``aurous.*``
  attributes (request id, rate-limit bucket, seconds queued for a permit, attempts,
  generation id where known), and a child span per attempt (``http.request.resend_count``
  on retries);
- an INTERNAL span per ``wait`` / ``wait_for``, with one event per status change;
- the metrics named in ``_Instruments``.

Attributes hold route templates, hosts, statuses, ids and error type names only: never a
URL (an output URL's query is its signature), a header, a body, a prompt, the API key or
a webhook secret; exception messages are not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._errors import APIStatusError
from ._ratelimit import UNMETERED, Permit
from ._requester import Call, Reply, Requester, _bucket_of, _Pausable, _Progress
from ._transport import BodySink, Multipart, Response, Transport
from ._version import __version__
from ._waits import ApiSource, JobRef, Waits
from .models import Generation

__all__ = ["TracedApiSource", "TracedRequester", "TracedWaits", "active"]

T = TypeVar("T")

_SCOPE = "aurous_async"
_GENERATION_ROUTES = ("/v1/images/", "/v1/videos/")
_POLL_ONE = "/v1/images/{id}"
_POLL_LIST = "/v1/images"


def _public_probe() -> bool:
    return not (
        isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        and isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)
    )


def _probe() -> Callable[[], bool]:
    """Whether the application has set a tracer or a meter provider (the SDK is on).

    The public getters cost microseconds (each reads ``os.environ``), too much for every
    call, so the API's own globals are read when they are where this version keeps
    them. An environment-configured provider is loaded by ``_Instruments`` (its
    ``get_tracer`` / ``get_meter``), so the globals see it too.
    """
    tracer_module = trace
    meter_module = _metrics_internal
    if not (
        hasattr(tracer_module, "_TRACER_PROVIDER") and hasattr(meter_module, "_METER_PROVIDER")
    ):
        return _public_probe

    def probe() -> bool:
        return (
            tracer_module._TRACER_PROVIDER is not None or meter_module._METER_PROVIDER is not None
        )

    return probe


active = _probe()


class _Instruments:
    """The tracer and the instruments, made once per process (the API's proxies follow a
    provider set later)."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(_SCOPE, __version__)
        meter = metrics.get_meter(_SCOPE, __version__)
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
        )
        self.queue_wait = meter.create_histogram(
            "aurous.rate_limit.queue_wait",
            unit="s",
            description="Seconds a call waited for rate-limit permits (one per call).",
        )
        self.rate_limited = meter.create_counter(
            "aurous.rate_limit.rejections",
            unit="{response}",
            description="429 answers received.",
        )
        self.in_flight = meter.create_up_down_counter(
            "aurous.generations.in_flight",
            unit="{generation}",
            description="Generations being waited for (one per wait in progress).",
        )
        self.polls = meter.create_counter(
            "aurous.poll.requests",
            unit="{request}",
            description="GET requests the shared poller sent for waits.",
        )


_instruments: _Instruments | None = None


def _get() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class _CallState:
    """One traced call: what its attempts share and what they found out."""

    __slots__ = (
        "attempt_name",
        "attempts",
        "attributes",
        "bucket",
        "queued",
        "request_id",
        "status",
    )

    def __init__(self, attempt_name: str, attributes: dict[str, Any], bucket: str) -> None:
        self.attempt_name = attempt_name
        self.attributes = attributes
        self.bucket = bucket
        self.attempts = 0
        self.queued = 0.0
        self.status: int | None = None
        self.request_id: str | None = None


#: The traced call running in this task, for its attempts (``_TracedTransport``).
_CALL: ContextVar[_CallState | None] = ContextVar("aurous_async_traced_call", default=None)
#: The span of a ``wait`` in progress: its ``wait_for`` adds events to it.
_WAIT_SPAN: ContextVar[Span | None] = ContextVar("aurous_async_wait_span", default=None)


class TracedRequester(Requester):
    """``Requester`` with a span per call and per attempt, and the request metrics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._instruments = _get()
        base = urlsplit(self.base_url)
        self._base_server = base.hostname or ""
        self._base_port = base.port or (443 if base.scheme == "https" else 80)
        self.transport = _TracedTransport(self.transport, self._instruments)  # type: ignore[assignment]

    # Not a coroutine function: without a provider the plain coroutine is returned as is,
    # and the untraced call costs one check, not another await level.
    def _run(
        self,
        call: Call,
        decode: Callable[[Reply], T],
        parse: Callable[[bytes], object],
        sink: BodySink | None = None,
    ) -> Coroutine[Any, Any, T]:
        if not active():
            return super()._run(call, decode, parse, sink)
        return self._traced_run(call, decode, parse, sink)

    async def _traced_run(
        self,
        call: Call,
        decode: Callable[[Reply], T],
        parse: Callable[[bytes], object],
        sink: BodySink | None,
    ) -> T:
        instruments = self._instruments
        route = _template(call)
        if "://" in call.path:
            where = urlsplit(call.path)
            server = where.hostname or ""
            port = where.port or (443 if where.scheme == "https" else 80)
        else:
            server, port = self._base_server, self._base_port
        bucket = _bucket_of(call.method, call.route, call.synthesize) if call.metered else UNMETERED
        attributes: dict[str, Any] = {
            "http.request.method": call.method,
            "url.template": route,
            "server.address": server,
            "server.port": port,
        }
        name = f"{call.method} {route}"
        span = instruments.tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={**attributes, "aurous.rate_limit.bucket": bucket},
        )
        state = _CallState(name, attributes, bucket)
        token = _CALL.set(state)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = await super()._run(call, decode, parse, sink)
        except BaseException as exc:
            _fail(span, exc)
            if isinstance(exc, APIStatusError):
                state.status = exc.status
                state.request_id = exc.request_id or state.request_id
            generation_id = _id_in_path(call)
            raise
        else:
            generation_id = result.id if isinstance(result, Generation) else _id_in_path(call)
        finally:
            _CALL.reset(token)
            queued = state.queued
            instruments.queue_wait.record(queued, {"aurous.rate_limit.bucket": bucket})
            found: dict[str, Any] = {
                "aurous.attempts": state.attempts,
                "aurous.rate_limit.queued": queued,
            }
            if state.status is not None:
                found["http.response.status_code"] = state.status
            if state.request_id is not None:
                found["aurous.request_id"] = state.request_id
            if generation_id is not None:
                found["aurous.generation.id"] = generation_id
            span.set_attributes(found)  # one lock, not one per attribute
            span.end()
        return result

    async def _queue(self, bucket: str, deadline: _Pausable, progress: _Progress) -> Permit:
        try:
            return await super()._queue(bucket, deadline, progress)
        finally:
            state = _CALL.get()
            if state is not None:
                state.queued = progress.queued


class _TracedTransport:
    """The requester's view of the transport: one span and one duration per attempt of
    a traced call; a call that is not traced goes straight through."""

    def __init__(self, inner: Transport, instruments: _Instruments) -> None:
        self._inner = inner
        self._instruments = instruments

    @property
    def attempt_bound(self) -> float:
        return self._inner.attempt_bound

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._inner.loop

    def send(
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
    ) -> Coroutine[Any, Any, Response]:
        sent = self._inner.send(
            method,
            url,
            headers=headers,
            params=params,
            json_body=json_body,
            content=content,
            download=download,
            sink=sink,
        )
        state = _CALL.get()
        if state is None:
            return sent
        return self._attempt(state, sent)

    async def _attempt(self, state: _CallState, sent: Coroutine[Any, Any, Response]) -> Response:
        instruments = self._instruments
        state.attempts += 1
        attributes = dict(state.attributes)
        if state.attempts > 1:
            attributes["http.request.resend_count"] = state.attempts - 1
        span = instruments.tracer.start_span(
            state.attempt_name, kind=SpanKind.CLIENT, attributes=attributes
        )
        started = time.perf_counter()
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                response = await sent
        except BaseException as exc:
            error_type = _fail(span, exc)
            span.end()
            attributes["error.type"] = error_type
            attributes.pop("http.request.resend_count", None)
            instruments.duration.record(time.perf_counter() - started, attributes)
            raise
        status = response.status
        state.status = status
        state.request_id = response.request_id
        found: dict[str, Any] = {"http.response.status_code": status}
        if response.request_id is not None:
            found["aurous.request_id"] = response.request_id
        attributes.pop("http.request.resend_count", None)
        attributes["http.response.status_code"] = status
        if status >= 400:
            attributes["error.type"] = found["error.type"] = str(status)
            span.set_status(Status(StatusCode.ERROR))
            if status == 429:
                instruments.rate_limited.add(
                    1,
                    {
                        "url.template": attributes["url.template"],
                        "aurous.rate_limit.bucket": state.bucket,
                    },
                )
        span.set_attributes(found)
        span.end()
        instruments.duration.record(time.perf_counter() - started, attributes)
        return response


class TracedApiSource(ApiSource):
    """The poller's GETs, counted; each traced as a call of its own (the shared poller
    serves every wait, so its requests belong to no caller's trace)."""

    async def get(self, generation_id: str) -> tuple[Generation, float | None]:
        _get().polls.add(1, {"url.template": _POLL_ONE})
        with _detached():
            return await super().get(generation_id)

    async def page(self, cursor: str | None, limit: int) -> tuple[Sequence[Generation], str | None]:
        _get().polls.add(1, {"url.template": _POLL_LIST})
        with _detached():
            return await super().page(cursor, limit)


class TracedWaits(Waits):
    """``wait`` and ``wait_for`` with a span each (events: the statuses seen) and the
    in-flight gauge."""

    def wait_for(
        self, job: JobRef, *, timeout: float | None = None, on_progress: bool = False
    ) -> AsyncGenerator[Generation, None]:
        if not active():
            return super().wait_for(job, timeout=timeout, on_progress=on_progress)
        return self._traced_wait_for(job, timeout=timeout, on_progress=on_progress)

    async def _traced_wait_for(
        self, job: JobRef, *, timeout: float | None, on_progress: bool
    ) -> AsyncGenerator[Generation, None]:
        instruments = _get()
        span = _WAIT_SPAN.get()
        own = span is None
        if span is None:
            # Not made current: an async generator's context is its consumer's.
            span = _wait_span("wait_for", job, timeout)
        instruments.in_flight.add(1)
        status: str | None = None
        try:
            async with contextlib.aclosing(
                super().wait_for(job, timeout=timeout, on_progress=on_progress)
            ) as snapshots:
                async for snapshot in snapshots:
                    if snapshot.status.value != status:
                        status = snapshot.status.value
                        span.add_event(
                            "aurous.generation.status",
                            {
                                "aurous.generation.id": snapshot.id,
                                "aurous.generation.status": status,
                            },
                        )
                    yield snapshot
        except GeneratorExit:
            raise
        except BaseException as exc:
            if own:
                _fail(span, exc)
            raise
        finally:
            instruments.in_flight.add(-1)
            if own:
                if status is not None:
                    span.set_attribute("aurous.generation.status", status)
                span.end()

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
        cancel_on_timeout: bool = False,
    ) -> Generation:
        if not active():
            return await super().wait(
                job,
                timeout=timeout,
                raise_on_failure=raise_on_failure,
                cancel_on_timeout=cancel_on_timeout,
            )
        span = _wait_span("wait", job, timeout)
        token = _WAIT_SPAN.set(span)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = await super().wait(
                    job,
                    timeout=timeout,
                    raise_on_failure=raise_on_failure,
                    cancel_on_timeout=cancel_on_timeout,
                )
        except BaseException as exc:
            _fail(span, exc)
            raise
        else:
            span.set_attribute("aurous.generation.status", result.status.value)
        finally:
            _WAIT_SPAN.reset(token)
            span.end()
        return result


def _wait_span(name: str, job: JobRef, timeout: float | None) -> Span:
    attributes: dict[str, Any] = {
        "aurous.generation.id": job.id if isinstance(job, Generation) else job
    }
    if timeout is not None:
        attributes["aurous.wait.timeout"] = timeout
    return _get().tracer.start_span(f"aurous.{name}", kind=SpanKind.INTERNAL, attributes=attributes)


def _fail(span: Span, exc: BaseException) -> str:
    """Mark ``span`` failed by ``exc``'s type (never its message: it may quote a body)."""
    error_type = type(exc).__qualname__
    span.set_attribute("error.type", error_type)
    if not isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
        span.set_status(Status(StatusCode.ERROR, error_type))
    return error_type


def _template(call: Call) -> str:
    """The route template, without the method some routes repeat (``PUT {upload_url}``)."""
    route = call.route
    if route.startswith(call.method + " "):
        return route[len(call.method) + 1 :]
    return route


def _id_in_path(call: Call) -> str | None:
    """A generation's id from an API path shaped like its template (never from a URL)."""
    route = call.route
    if "://" in call.path or "{id}" not in route or not route.startswith(_GENERATION_ROUTES):
        return None
    parts = call.path.split("?", 1)[0].split("/")
    shape = route.split("/")
    if len(parts) != len(shape):
        return None
    return parts[shape.index("{id}")] or None


@contextlib.contextmanager
def _detached() -> Iterator[None]:
    """Run the block in an empty OpenTelemetry context (its spans start new traces)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)
