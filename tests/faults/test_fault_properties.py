"""Property-based checks of the pure layers every fault goes through: rate-limit header
parsing, webhook signature verification, and model structuring (issue 6)."""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurous_async._ratelimit import RateLimit, parse_retry_after
from aurous_async._wire import structure, unstructure
from aurous_async.models import Generation, GenerationStatus
from aurous_async.webhooks import (
    SIGNATURE_HEADER,
    VerificationFailure,
    WebhookVerificationError,
    sign,
    verify,
)

NOW = 1_800_000_000
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

header_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40
)
header_names = st.sampled_from(
    [
        "X-RateLimit-Limit",
        "x-ratelimit-remaining",
        "X-RATELIMIT-RESET",
        "RateLimit-Limit",
        "ratelimit-remaining",
        "RateLimit-Reset",
        "Retry-After",
        "retry-after",
        "Other",
    ]
)


# -- header parsing ---------------------------------------------------------------------
@PROPERTY
@given(st.dictionaries(header_names, header_text, max_size=9))
def test_rate_limit_headers_never_crash_and_never_go_negative(headers: dict[str, str]) -> None:
    """Any header values parse to nothing or to finite, non-negative numbers."""
    parsed = RateLimit.from_headers(headers, now=NOW)
    if parsed is None:
        return
    for value in (parsed.limit, parsed.remaining, parsed.reset_at, parsed.retry_after):
        assert value is None or value >= 0


@PROPERTY
@given(
    limit=st.integers(0, 10**6),
    remaining=st.integers(0, 10**6),
    reset_in=st.integers(0, 10**5),
    retry=st.integers(0, 3600),
    upper=st.booleans(),
)
def test_documented_headers_round_trip(
    limit: int, remaining: int, reset_in: int, retry: int, upper: bool
) -> None:
    """The documented X-RateLimit trio and Retry-After read back exactly, any case."""
    names = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"]
    names = [n.upper() if upper else n.lower() for n in names]
    values = [str(limit), str(remaining), str(NOW + reset_in), str(retry)]
    parsed = RateLimit.from_headers(dict(zip(names, values, strict=True)), now=NOW)
    assert parsed is not None
    assert (parsed.limit, parsed.remaining) == (limit, remaining)
    assert parsed.reset_at == NOW + reset_in
    assert parsed.retry_after == retry


@PROPERTY
@given(header_text)
def test_retry_after_is_none_or_a_non_negative_wait(value: str) -> None:
    """Retry-After garbage is ignored, never a negative or non-finite wait."""
    wait = parse_retry_after(value, now=NOW)
    assert wait is None or 0 <= wait < float("inf")


# -- signature verification ---------------------------------------------------------------
secrets = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40).map(
    lambda s: "whsec_" + s
)
envelopes = st.builds(
    lambda event_id, kind, data: json.dumps(
        {
            "id": "evt_" + event_id,
            "object": "event",
            "type": kind,
            "created_at": "2027-01-15T08:00:00Z",
            "api_version": "2026-05-15",
            "synthetic": False,
            "data": data,
        }
    ).encode(),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=26),
    st.sampled_from(["image.completed", "video.failed", "usage.balance_low", "x.unknown"]),
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
)


@PROPERTY
@given(body=envelopes, secret=secrets, skew=st.integers(-300, 300))
def test_signed_delivery_verifies_within_tolerance(body: bytes, secret: str, skew: int) -> None:
    """What ``sign`` signs, ``verify`` accepts within 300 s either way."""
    header = sign(body, secret, timestamp=NOW + skew)
    event = verify(body, {SIGNATURE_HEADER: header}, secret, now=NOW)
    assert event.id.startswith("evt_")


@PROPERTY
@given(body=envelopes, secret=secrets, data=st.data())
def test_any_changed_byte_is_refused(body: bytes, secret: str, data: st.DataObject) -> None:
    """Flipping any byte of a signed body makes the signature fail."""
    header = sign(body, secret, timestamp=NOW)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationError) as info:
        verify(tampered, {SIGNATURE_HEADER: header}, secret, now=NOW)
    assert info.value.reason is VerificationFailure.NO_MATCHING_SIGNATURE
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


@PROPERTY
@given(body=envelopes, secret=secrets, other=secrets, skew=st.integers(301, 10**6))
def test_wrong_secret_or_far_timestamp_is_refused(
    body: bytes, secret: str, other: str, skew: int
) -> None:
    """Another secret never verifies; an authentic but stale or future one is too far."""
    if other != secret:
        header = sign(body, other, timestamp=NOW)
        with pytest.raises(WebhookVerificationError) as foreign:
            verify(body, {SIGNATURE_HEADER: header}, secret, now=NOW)
        assert foreign.value.reason is VerificationFailure.NO_MATCHING_SIGNATURE
    for stamp in (NOW - skew, NOW + skew):
        header = sign(body, secret, timestamp=stamp)
        with pytest.raises(WebhookVerificationError) as far:
            verify(body, {SIGNATURE_HEADER: header}, secret, now=NOW)
        assert far.value.reason is VerificationFailure.TIMESTAMP_OUTSIDE_TOLERANCE


@PROPERTY
@given(body=st.binary(max_size=64), header=header_text, secret=secrets)
def test_arbitrary_headers_fail_only_with_verification_errors(
    body: bytes, header: str, secret: str
) -> None:
    """Garbage signature headers are rejected with the typed error, never a crash."""
    with contextlib.suppress(WebhookVerificationError):
        verify(body, {SIGNATURE_HEADER: header}, secret, now=NOW)


# -- model structuring --------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
statuses = st.sampled_from([s.value for s in GenerationStatus]) | st.text(min_size=1)
generations = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["img_", "vid_"]).flatmap(
            lambda p: st.text(string.ascii_uppercase, min_size=1).map(lambda s: p + s)
        ),
        "status": statuses,
        "created_at": st.datetimes().map(lambda d: d.isoformat() + "Z"),
    },
    optional={
        "prompt": st.text() | st.none(),
        "output_urls": st.lists(st.text(), max_size=3) | st.none(),
        "duration_ms": st.integers(0, 10**9) | st.none(),
        "video_camera_fixed": json_values,
        "loras": st.lists(st.fixed_dictionaries({"id": st.text(), "name": st.text()}), max_size=2),
    },
)


@PROPERTY
@given(generations, st.dictionaries(st.text(min_size=1).map(lambda k: "x_" + k), json_values))
def test_generation_structures_with_unknown_fields_and_values(
    data: dict[str, object], extra: dict[str, object]
) -> None:
    """Unknown fields are ignored, unknown statuses kept (and never terminal), and the
    model round-trips through the wire form."""
    generation = structure({**extra, **data}, Generation)
    assert type(generation.status) is GenerationStatus
    assert generation.status.value == data["status"]
    if data["status"] not in {s.value for s in GenerationStatus}:
        assert not generation.is_terminal
    assert structure(unstructure(generation), Generation) == generation


@PROPERTY
@given(json_values)
def test_any_json_either_fits_or_raises_value_error(value: object) -> None:
    """Structuring arbitrary JSON gives a Generation or a ValueError, nothing else."""
    with contextlib.suppress(ValueError):
        structure(value, Generation)
