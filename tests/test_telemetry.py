"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

import pytest
from _sdk_helpers import emulated
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aurous_async import AsyncAurous, AuthenticationError, NotFoundError
from aurous_async._requester import Requester
from aurous_async.testing import Fault, run_emulator

pytestmark = pytest.mark.anyio

_DELTA = {
    kind: AggregationTemporality.DELTA
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}
_providers: tuple[InMemorySpanExporter, InMemoryMetricReader] | None = None


@pytest.fixture
def otel() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The process's tracer and meter providers (set once: the API allows no other),
    with the spans and the metrics of earlier tests cleared."""
    global _providers
    if _providers is None:
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        reader = InMemoryMetricReader(preferred_temporality=_DELTA)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _providers = (exporter, reader)
    exporter, reader = _providers
    exporter.clear()
    reader.get_metrics_data()  # DELTA: the next read starts from here
    return exporter, reader


def _points(data: MetricsData | None) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _calls(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    """The spans of logical calls named ``name`` (their attempts have the same name)."""
    return [s for s in _named(spans, name) if "aurous.attempts" in _attributes(s)]


def _attributes(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_create_wait_download_records_spans_and_metrics(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """A create that meets a 429, its wait and its download give a span per call with a
    child per attempt, a wait span with its statuses, and every metric of the issue."""
    exporter, reader = otel
    async with emulated() as (emu, client):
        emu.inject(Fault("rate_limit", match="POST /v1/images", retry_after=1))
        image = await client.images.create(prompt="a lighthouse")
        done = await client.wait(image)
        data = await client.images.download(done)
    assert data
    spans = exporter.get_finished_spans()

    (create,) = _calls(spans, "POST /v1/images")
    assert create.kind is SpanKind.CLIENT
    attrs = _attributes(create)
    assert attrs["http.request.method"] == "POST"
    assert attrs["url.template"] == "/v1/images"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["http.response.status_code"] == 201
    assert attrs["aurous.attempts"] == 2
    assert attrs["aurous.generation.id"] == image.id
    assert attrs["aurous.request_id"] == image.request_id
    assert attrs["aurous.rate_limit.bucket"] == "images_post"
    assert isinstance(attrs["aurous.rate_limit.queued"], float)
    assert create.parent is None

    attempts = _children(spans, create)
    assert [_attributes(s)["http.response.status_code"] for s in attempts] == [429, 201]
    assert _attributes(attempts[0])["error.type"] == "429"
    assert "http.request.resend_count" not in _attributes(attempts[0])
    assert _attributes(attempts[1])["http.request.resend_count"] == 1

    (wait,) = _named(spans, "aurous.wait")
    assert wait.kind is SpanKind.INTERNAL
    assert _attributes(wait)["aurous.generation.id"] == image.id
    assert _attributes(wait)["aurous.generation.status"] == "succeeded"
    statuses = [(e.attributes or {})["aurous.generation.status"] for e in wait.events]
    assert statuses[-1] == "succeeded"
    assert len(statuses) == len(set(statuses)) >= 2

    (download,) = _calls(spans, "GET /v1/images/{id}/output/{n}")
    assert _attributes(download)["url.template"] == "/v1/images/{id}/output/{n}"
    assert _attributes(download)["http.response.status_code"] == 200

    points = _points(reader.get_metrics_data())
    durations = points["http.client.request.duration"]
    assert sum(p.count for p in durations) == len([r for r in emu.requests if r.path != "/"])
    assert {p.attributes["http.response.status_code"] for p in durations} >= {429, 201, 200}
    assert sum(p.value for p in points["aurous.rate_limit.rejections"]) == 1
    assert sum(p.count for p in points["aurous.rate_limit.queue_wait"]) >= 3
    polls = points["aurous.poll.requests"]
    assert sum(p.value for p in polls) >= 1
    (in_flight,) = points["aurous.generations.in_flight"]
    assert in_flight.value == 0  # one wait started and ended within the read


async def test_a_wait_counts_as_in_flight_while_it_runs(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """``aurous.generations.in_flight`` is 1 while a ``wait_for`` is under way."""
    _, reader = otel
    async with emulated() as (_emu, client):
        image = await client.images.create(prompt="x")
        async with contextlib.aclosing(client.wait_for(image)) as snapshots:  # type: ignore[type-var]
            async for _snapshot in snapshots:
                (point,) = _points(reader.get_metrics_data())["aurous.generations.in_flight"]
                assert point.value == 1
                break
    (point,) = _points(reader.get_metrics_data())["aurous.generations.in_flight"]
    assert point.value == -1  # DELTA: the wait ended


async def test_a_failed_call_is_marked_with_its_error_type(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """A 404 ends the call span in error, named by the error class and the status."""
    exporter, _ = otel
    async with emulated() as (_emu, client):
        with pytest.raises(NotFoundError):
            await client.images.get("img_missing")
    (span,) = _calls(exporter.get_finished_spans(), "GET /v1/images/{id}")
    (attempt,) = [s for s in exporter.get_finished_spans() if s.parent is not None]
    assert span.status.status_code is StatusCode.ERROR
    assert _attributes(span)["error.type"] == "NotFoundError"
    assert _attributes(span)["http.response.status_code"] == 404
    assert _attributes(span)["aurous.generation.id"] == "img_missing"
    assert _attributes(attempt)["error.type"] == "404"


async def test_no_secret_reaches_any_span_event_or_metric(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """The API key, a webhook secret, the prompt and a signed URL's query appear in no
    span name, attribute, event or metric attribute."""
    exporter, reader = otel
    prompt = "a secret prompt about lighthouses"
    async with emulated() as (emu, client):
        endpoint = await client.webhook_endpoints.create(
            url="http://127.0.0.1:9/hook", events=["image.completed"]
        )
        rotated = await client.webhook_endpoints.rotate_secret(endpoint.id)
        emu.inject(Fault("status", match="POST /v1/images", status=503))
        image = await client.wait(await client.images.create(prompt=prompt))
        await client.images.download(image)
        async with AsyncAurous("al_live_wrong" + "9" * 40, base_url=emu.base_url) as bad:
            with pytest.raises(AuthenticationError):
                await bad.balance.get()
    url = image.output_urls[0]
    query = url.split("?", 1)[1]
    secrets = [emu.api_key, endpoint.secret, rotated.secret, prompt, query, url]
    assert all(secrets)
    texts: list[str] = []
    for span in exporter.get_finished_spans():
        texts.append(span.name)
        texts += [f"{k}={v}" for k, v in _attributes(span).items()]
        for event in span.events:
            texts.append(event.name)
            texts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
    for points in _points(reader.get_metrics_data()).values():
        for point in points:
            texts += [f"{k}={v}" for k, v in point.attributes.items()]
    assert len(texts) > 50
    leaks = [t for t in texts for s in secrets if s and str(s) in t]
    assert leaks == []
    assert "al_live_wrong" not in " ".join(texts)


async def test_tracing_false_records_nothing(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """``tracing=False`` builds the plain client: no span, no metric."""
    exporter, reader = otel
    async with (
        run_emulator() as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, tracing=False) as client,
    ):
        assert type(client._requester) is Requester
        await client.balance.get()
    assert exporter.get_finished_spans() == ()
    assert "http.client.request.duration" not in _points(reader.get_metrics_data())


async def test_poll_requests_start_traces_of_their_own(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """The shared poller's GETs belong to no caller's trace, even inside a caller's span."""
    exporter, _ = otel
    tracer = trace.get_tracer("test")
    async with emulated() as (_emu, client):
        image = await client.images.create(prompt="x")
        with tracer.start_as_current_span("handler"):
            await client.wait(image.id)
    spans = exporter.get_finished_spans()
    (handler,) = _named(spans, "handler")
    (wait,) = _named(spans, "aurous.wait")
    assert wait.parent is not None
    assert wait.parent.span_id == handler.context.span_id
    polls = _calls(spans, "GET /v1/images/{id}")
    assert polls
    assert all(p.parent is None or p.parent.trace_id != handler.context.trace_id for p in polls)


async def test_concurrent_calls_keep_their_attempts_apart(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """Each of several concurrent calls has exactly its own attempt span as a child."""
    exporter, _ = otel
    async with emulated() as (_emu, client):
        await asyncio.gather(*(client.balance.get() for _ in range(5)))
    spans = exporter.get_finished_spans()
    calls = _calls(spans, "GET /v1/balance")
    assert len(calls) == 5
    for call in calls:
        assert len(_children(spans, call)) == 1
        assert _attributes(call)["aurous.attempts"] == 1


_WITHOUT_OTEL = textwrap.dedent(
    """
    import asyncio, sys
    from importlib.abc import MetaPathFinder

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    if sys.argv[1] == "absent":
        sys.meta_path.insert(0, Block())

    import aurous_async
    from aurous_async.testing import run_emulator

    async def main():
        async with run_emulator() as emu:
            async with aurous_async.AsyncAurous(
                emu.api_key, base_url=emu.base_url, tracing=sys.argv[1] == "absent"
            ) as client:
                balance = await client.balance.get()
        assert balance.credits > 0
        assert not any(m.split(".")[0] == "opentelemetry" for m in sys.modules), sys.argv[1]
        print("ok")

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("mode", ["absent", "disabled"])
def test_no_opentelemetry_import_when_absent_or_disabled(mode: str) -> None:
    """Without ``opentelemetry`` (or with ``tracing=False``) the package and a call work
    and nothing of OpenTelemetry is imported."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
