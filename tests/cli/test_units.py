"""Pure pieces of the command: the rate-wait meter, target choice, progress, error lines."""

from __future__ import annotations

import io

import pytest
from _clocks import SteppingClock
from rich.console import Console

from aurous_async import InvalidParameterError, NotFoundError
from aurous_async._cli._inputs import build_request
from aurous_async._cli._journal import Line
from aurous_async._cli._output import error_text
from aurous_async._cli._progress import BatchProgress
from aurous_async._cli._target import RateWaitMeter, TargetOptions, wants_embedded


@pytest.mark.anyio
async def test_meter_counts_only_sleeps_inside_measuring() -> None:
    """Sleeps inside ``measuring()`` (a create's pacing) count; a poll's sleep does not."""
    clock = SteppingClock()
    meter = RateWaitMeter(clock, monotonic=clock.time)
    await meter.sleep(5.0)
    with meter.measuring():
        await meter.sleep(2.0)
        await meter.sleep(1.5)
    assert meter.waited == 3.5
    assert meter.time() == 8.5


@pytest.mark.parametrize(
    ("env", "options", "embedded"),
    [
        ({}, TargetOptions(), True),
        ({"AUROUS_API_KEY": "k"}, TargetOptions(), False),
        ({}, TargetOptions(base_url="http://x"), False),
        ({"AUROUS_BASE_URL": "http://x"}, TargetOptions(), False),
        ({"AUROUS_API_KEY": "k"}, TargetOptions(emulator=True), True),
        ({}, TargetOptions(api_key="k"), False),
    ],
)
def test_target_choice(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], options: TargetOptions, embedded: bool
) -> None:
    """No key and no base URL (or --emulator) selects the in-process emulator."""
    monkeypatch.delenv("AUROUS_API_KEY", raising=False)
    monkeypatch.delenv("AUROUS_BASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wants_embedded(options) is embedded


def _line(number: int, status: str, cost: float | None = None, files: tuple[str, ...] = ()) -> Line:
    request = build_request(number, {"prompt": "p"})
    return Line(
        line=number,
        kind="image",
        request_hash=request.digest,
        request="{}",
        attempt=0,
        idempotency_key=f"k{number}",
        estimate=1.0,
        generation_id=None if status == "pending" else f"img_{number}",
        status=status,
        cost=cost,
        files=files,
        error=None,
    )


def test_progress_counts_credits_and_plain_lines() -> None:
    """Without a terminal, progress is plain lines with counts, credits and rate-limit wait."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    lines = [
        _line(1, "pending"),
        _line(2, "processing", cost=2.0),
        _line(3, "succeeded", cost=1.0, files=("a.png",)),
        _line(4, "succeeded", cost=1.0),
    ]
    progress = BatchProgress(lines, console, rate_wait=lambda: 1.25)
    with progress:
        progress.update(_line(1, "failed"), "line 1: failed")
    assert progress.counts() == {"processing": 1, "downloading": 1, "succeeded": 1, "failed": 1}
    assert (progress.held, progress.charged, progress.finished) == (2.0, 2.0, 2)
    text = buffer.getvalue()
    assert "line 1: failed" in text
    assert "2/4 finished" in text
    assert "held 2 / charged 2 credits" in text
    assert "rate-limit wait 1.2s" in text


def test_quiet_progress_prints_nothing() -> None:
    """With --json the progress view is silent."""
    buffer = io.StringIO()
    with BatchProgress(
        [_line(1, "pending")], Console(file=buffer), rate_wait=float, quiet=True
    ) as p:
        p.update(_line(1, "succeeded", files=("a.png",)), "done")
    assert buffer.getvalue() == ""


def test_error_text_is_one_line_with_code_and_request_id() -> None:
    """API errors read ``status code: message (request id ...)``; bad parameters their message."""
    error = NotFoundError(
        "No such generation.", status=404, code="resource_not_found", request_id="req_1"
    )
    assert error_text(error) == "404 resource_not_found: No such generation. (request id req_1)"
    assert error_text(InvalidParameterError("steps: too big")) == "steps: too big"
    assert error_text(ValueError("x")) == "ValueError: x"


def test_target_options_repr_hides_the_api_key() -> None:
    """The --api-key value never shows in a repr (tracebacks, debug logs)."""
    secret = "al_live_" + "s" * 64
    options = TargetOptions(api_key=secret, base_url="http://127.0.0.1:1")
    assert secret not in repr(options)
    assert "127.0.0.1" in repr(options)
