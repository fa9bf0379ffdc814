"""The pure webhook layer: ``sign``, ``verify`` and ``parse_callback`` (contract A11, A12)."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurous_async import AurousError, EventType, GenerationStatus
from aurous_async.webhooks import (
    SIGNATURE_HEADER,
    Event,
    VerificationFailure,
    WebhookVerificationError,
    parse_callback,
    sign,
    verify,
)

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec_8jKpQ4nXabc1234abcdef567890"
OLD_SECRET = "whsec_oldOldOld0123456789abcdefXYZ"
T = 1_714_752_900


def envelope(event_type: str = "image.completed", **overrides: Any) -> bytes:
    """A delivery body shaped like A11's envelope."""
    data: object = json.loads((FIXTURES / "generation.json").read_text())
    if event_type.startswith("character."):
        data = json.loads((FIXTURES / "character.json").read_text())
    body: dict[str, object] = {
        "id": "evt_01HXMQ7Z3K8Y2ABCDEFGHJKM",
        "object": "event",
        "type": event_type,
        "created_at": "2026-05-04T10:00:14Z",
        "api_version": "2026-05-15",
        "synthetic": False,
        "data": data,
    }
    body.update(overrides)
    return json.dumps(body).encode()


def headers_for(body: bytes, secret: str | list[str] = SECRET, t: int = T) -> dict[str, str]:
    """Request headers carrying a signature made by ``sign``."""
    return {SIGNATURE_HEADER: sign(body, secret, timestamp=t)}


def reason_of(body: bytes, headers: dict[str, str], secret: str | list[str] = SECRET) -> str:
    """The failure reason ``verify`` gives."""
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers, secret, now=T)
    return caught.value.reason.value


def test_signature_matches_the_contract_formula() -> None:
    """``v1`` is the hex HMAC-SHA256 keyed with the full whsec_ string over ``<t>.<body>``."""
    body = envelope()
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET, timestamp=T) == f"t={T},v1={expected}"


def test_good_delivery_gives_a_typed_event() -> None:
    """A correctly signed delivery decodes into an Event with typed fields and raw data."""
    body = envelope()
    event = verify(body, headers_for(body), SECRET, now=T)
    assert event.id == "evt_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    assert event.type is EventType.IMAGE_COMPLETED
    assert event.created_at == datetime(2026, 5, 4, 10, 0, 14, tzinfo=timezone.utc)
    assert event.api_version == "2026-05-15"
    assert event.synthetic is False
    assert event.data["id"] == "img_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    generation = event.generation
    assert generation is not None
    assert generation.id == "img_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    assert generation.status == GenerationStatus.SUCCEEDED
    assert event.character is None
    assert event.balance is None
    assert event.webhook_endpoint is None


def test_character_event_decodes_a_character() -> None:
    """A character.* event exposes its data as a Character and not as a Generation."""
    body = envelope("character.completed")
    event = verify(body, headers_for(body), SECRET, now=T)
    character = event.character
    assert character is not None
    assert character.id == "char_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    assert event.generation is None


@pytest.mark.parametrize(
    ("event_type", "data", "accessor"),
    [
        (
            "usage.balance_low",
            {"credits": 1.0, "held_credits": 0, "available_credits": 1.0},
            "balance",
        ),
        (
            "webhook.endpoint_disabled",
            {"id": "we_1", "url": "https://x.example/h", "events": ["image.completed"]},
            "webhook_endpoint",
        ),
    ],
)
def test_account_events_decode_their_resource(
    event_type: str, data: dict[str, object], accessor: str
) -> None:
    """usage.* events expose a Balance and webhook.* events a WebhookEndpoint."""
    body = envelope(event_type, data=data)
    event = verify(body, headers_for(body), SECRET, now=T)
    assert getattr(event, accessor) is not None


def test_event_data_is_read_only() -> None:
    """The raw data mapping of a frozen Event cannot be changed in place."""
    body = envelope()
    event = verify(body, headers_for(body), SECRET, now=T)
    with pytest.raises(TypeError):
        event.data["id"] = "img_other"  # type: ignore[index]
    assert hash(event) == hash(verify(body, headers_for(body), SECRET, now=T))


def test_tampered_body_is_rejected() -> None:
    """Changing the body after signing fails with no_matching_signature."""
    body = envelope()
    headers = headers_for(body)
    assert reason_of(body.replace(b"succeeded", b"failed\x20\x20\x20"), headers) == (
        "no_matching_signature"
    )


def test_wrong_secret_is_rejected() -> None:
    """A delivery signed with another secret fails with no_matching_signature."""
    body = envelope()
    assert reason_of(body, headers_for(body, "whsec_someoneElse")) == "no_matching_signature"


def test_secret_prefix_is_part_of_the_key() -> None:
    """Signing with the secret minus its ``whsec_`` prefix does not verify."""
    body = envelope()
    headers = headers_for(body, SECRET.removeprefix("whsec_"))
    assert reason_of(body, headers) == "no_matching_signature"


@pytest.mark.parametrize(
    ("signed_with", "verified_with"),
    [
        ([SECRET, OLD_SECRET], [SECRET]),
        ([SECRET, OLD_SECRET], [OLD_SECRET]),
        ([OLD_SECRET], [SECRET, OLD_SECRET]),
        ([SECRET], [OLD_SECRET, SECRET]),
    ],
)
def test_rotation_any_v1_may_match_any_secret(
    signed_with: list[str], verified_with: list[str]
) -> None:
    """During a rotation any of the header's v1 values may match any configured secret."""
    body = envelope()
    assert verify(body, headers_for(body, signed_with), verified_with, now=T).id.startswith("evt_")


def test_unknown_schemes_and_extra_v1_values_are_tolerated() -> None:
    """Wrong v1 values and other schemes beside the right v1 do not stop verification."""
    body = envelope()
    good = "v1=" + sign(body, SECRET, timestamp=T).split(",v1=")[1].upper()
    header = f"t={T}, v0=deadbeef, v1={'0' * 64}, {good}"
    assert verify(body, {SIGNATURE_HEADER: header}, SECRET, now=T).type == "image.completed"


def test_blank_items_in_the_header_are_skipped() -> None:
    """Stray commas and spaces around items do not make a good header malformed."""
    body = envelope()
    header = " , " + sign(body, SECRET, timestamp=T).replace(",", " ,, ") + ","
    assert verify(body, {SIGNATURE_HEADER: header}, SECRET, now=T).id


def test_header_name_is_case_insensitive() -> None:
    """A lower-cased header name, as some frameworks hand it over, is found."""
    body = envelope()
    headers = {SIGNATURE_HEADER.lower(): sign(body, SECRET, timestamp=T)}
    assert verify(body, headers, SECRET, now=T).id


def test_timestamp_text_is_signed_literally() -> None:
    """The digest covers the header's ``t`` text as sent, leading zeros included."""
    body = envelope()
    text = f"00{T}"
    digest = hmac.new(SECRET.encode(), f"{text}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify(body, {SIGNATURE_HEADER: f"t={text},v1={digest}"}, SECRET, now=T).id


@pytest.mark.parametrize("offset", [-300.0, -299.5, 0.0, 299.5, 300.0])
def test_timestamps_within_tolerance_pass(offset: float) -> None:
    """A timestamp up to 300 s behind or ahead of now, inclusive, is accepted."""
    body = envelope()
    assert verify(body, headers_for(body), SECRET, now=T + offset).id


@pytest.mark.parametrize("offset", [-300.001, 300.001, -86_400.0, 86_400.0])
def test_timestamps_beyond_tolerance_fail(offset: float) -> None:
    """A stale or future timestamp beyond the tolerance fails with its own reason."""
    body = envelope()
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers_for(body), SECRET, now=T + offset)
    assert caught.value.reason is VerificationFailure.TIMESTAMP_OUTSIDE_TOLERANCE


def test_custom_tolerance_applies() -> None:
    """A tighter tolerance rejects what the default accepts."""
    body = envelope()
    assert verify(body, headers_for(body), SECRET, now=T + 20, tolerance=30).id
    with pytest.raises(WebhookVerificationError):
        verify(body, headers_for(body), SECRET, now=T + 31, tolerance=30)


def test_bad_signature_is_reported_before_a_stale_timestamp() -> None:
    """A forged delivery with an old timestamp reports the signature, not the time."""
    body = envelope()
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers_for(body, "whsec_forged"), SECRET, now=T + 10_000)
    assert caught.value.reason is VerificationFailure.NO_MATCHING_SIGNATURE


def test_missing_header_is_rejected() -> None:
    """No signature header (or a blank one) fails with missing_header."""
    body = envelope()
    assert reason_of(body, {}) == "missing_header"
    assert reason_of(body, {SIGNATURE_HEADER: "  "}) == "missing_header"


GOOD_V1 = "v1=" + "a" * 64


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"{GOOD_V1}",
        f"t={T}",
        f"t={T},v0={'a' * 64}",
        f"t=abc,{GOOD_V1}",
        f"t=-5,{GOOD_V1}",
        f"t=1.5,{GOOD_V1}",
        f"t=,{GOOD_V1}",
        f"t={'9' * 5000},{GOOD_V1}",
        f"t={T},t={T},{GOOD_V1}",
        f"t={T},v1=nothex",
        f"t={T},v1={'a' * 63}",
        f"t={T},v1={'é' * 64}",
        f"t={T},=x,{GOOD_V1}",
        f"t=١٢٣,{GOOD_V1}",
    ],
)
def test_malformed_headers_are_rejected(header: str) -> None:
    """Headers that do not follow ``t=<digits>,v1=<64 hex>`` fail with malformed_header."""
    assert reason_of(envelope(), {SIGNATURE_HEADER: header}) == "malformed_header"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"{}",
        b'{"id": "evt_1", "type": "image.completed"}',
        b'{"id": "evt_1", "type": {}, "created_at": "2026-05-04T10:00:14Z"}',
        b'{"id": "evt_1", "type": "image.completed", "created_at": "yesterday"}',
        b"[" * 100_000,
    ],
)
def test_signed_body_that_is_not_an_event_is_rejected(body: bytes) -> None:
    """A correctly signed body that is not an event envelope fails with invalid_payload."""
    assert reason_of(body, headers_for(body)) == "invalid_payload"


def test_signature_is_checked_before_parsing() -> None:
    """An unsigned body that is not JSON reports the signature, never the payload."""
    assert reason_of(b"not json", headers_for(b"other")) == "no_matching_signature"


@pytest.mark.parametrize("event_type", ["image.expired", "video.moderation_rejected", "new.thing"])
def test_unknown_event_types_are_kept(event_type: str) -> None:
    """An event type this SDK does not know is kept verbatim instead of failing."""
    body = envelope(event_type)
    event = verify(body, headers_for(body), SECRET, now=T)
    assert event.type == event_type
    assert event.type.value == event_type
    assert event.type not in list(EventType)
    assert (event.generation is not None) == event_type.startswith(("image.", "video."))


def test_unknown_envelope_fields_are_ignored() -> None:
    """Fields the SDK does not model, and a missing optional field, do not break decoding."""
    raw = json.loads(envelope())
    del raw["api_version"]
    raw["livemode"] = True
    body = json.dumps(raw).encode()
    event = verify(body, headers_for(body), SECRET, now=T)
    assert event.api_version is None


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (envelope(), {}),
        (envelope(), {SIGNATURE_HEADER: "t=1"}),
        (envelope(), headers_for(envelope(), "whsec_other")),
        (envelope(), headers_for(envelope(), t=T - 10_000)),
        (b"nope", headers_for(b"nope")),
    ],
)
def test_errors_never_contain_the_secret(body: bytes, headers: dict[str, str]) -> None:
    """No failure's message, str or repr contains the secret."""
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers, SECRET, now=T)
    error = caught.value
    for text in (error.message, str(error), repr(error), str(error.__cause__)):
        assert SECRET not in text
        assert SECRET.removeprefix("whsec_") not in text


def test_error_is_an_sdk_error_and_a_value_error() -> None:
    """The verification error is an AurousError and a ValueError, and pickles."""
    with pytest.raises(WebhookVerificationError) as caught:
        verify(b"{}", {}, SECRET, now=T)
    error = caught.value
    assert isinstance(error, AurousError)
    assert isinstance(error, ValueError)
    assert str(error.reason) == "missing_header"
    copy = pickle.loads(pickle.dumps(error))
    assert copy.reason is VerificationFailure.MISSING_HEADER
    assert "missing_header" in str(copy)


def test_programming_errors_are_not_verification_errors() -> None:
    """Text bodies, no secret and a negative tolerance raise TypeError / ValueError."""
    body = envelope()
    with pytest.raises(TypeError):
        verify(body.decode(), headers_for(body), SECRET, now=T)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        verify(body, headers_for(body), [], now=T)
    with pytest.raises(ValueError, match="secret"):
        verify(body, headers_for(body), "", now=T)
    with pytest.raises(ValueError, match="tolerance"):
        verify(body, headers_for(body), SECRET, now=T, tolerance=-1)
    with pytest.raises(ValueError, match="secret"):
        sign(body, [])
    with pytest.raises(ValueError, match="timestamp"):
        sign(body, SECRET, timestamp=-1)


def test_sign_defaults_to_now() -> None:
    """Without a timestamp, ``sign`` stamps the current time, which ``verify`` accepts."""
    body = envelope()
    assert verify(body, {SIGNATURE_HEADER: sign(body, SECRET)}, SECRET).id


def test_sign_emits_one_v1_per_secret_in_order() -> None:
    """Several secrets give several v1 values, in the order given."""
    header = sign(b"{}", [SECRET, OLD_SECRET], timestamp=T)
    parts = header.split(",")
    assert parts[0] == f"t={T}"
    assert parts[1] == sign(b"{}", SECRET, timestamp=T).split(",")[1]
    assert parts[2] == sign(b"{}", OLD_SECRET, timestamp=T).split(",")[1]


# --- per-generation callbacks (A12) ------------------------------------------------------


def test_parse_callback_decodes_event_and_generation() -> None:
    """An ``{event, data}`` callback decodes into its event type and Generation."""
    data = json.loads((FIXTURES / "generation.json").read_text())
    callback = parse_callback(json.dumps({"event": "image.completed", "data": data}).encode())
    assert callback.event is EventType.IMAGE_COMPLETED
    assert callback.generation.id == data["id"]


def test_parse_callback_keeps_older_event_names() -> None:
    """The older ``generation.completed`` name is kept verbatim."""
    body = {
        "event": "generation.completed",
        "data": {"id": "img_1", "status": "succeeded", "created_at": "2026-05-04T10:00:00Z"},
    }
    assert parse_callback(json.dumps(body).encode()).event == "generation.completed"


@pytest.mark.parametrize("body", [b"", b"nope", b"[]", b'{"data": {}}', b'{"event": null}'])
def test_parse_callback_rejects_bad_bodies(body: bytes) -> None:
    """A callback body that is not ``{event, data}`` fails with invalid_payload."""
    with pytest.raises(WebhookVerificationError) as caught:
        parse_callback(body)
    assert caught.value.reason is VerificationFailure.INVALID_PAYLOAD


def test_parse_callback_warns_that_callbacks_are_unsigned() -> None:
    """The docstring steers users to signed endpoints."""
    assert parse_callback.__doc__ is not None
    assert "not signed" in parse_callback.__doc__
    assert "verify" in parse_callback.__doc__


# --- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
secrets = st.text(min_size=1, max_size=40)
timestamps = st.integers(min_value=0, max_value=10**12)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """Arbitrary event envelopes, in arbitrary JSON formatting."""
    raw = {
        "id": draw(st.text(min_size=1)),
        "type": draw(st.text(min_size=1)),
        "created_at": "2026-05-04T10:00:14Z",
        "synthetic": draw(st.booleans()),
        "data": draw(st.dictionaries(st.text(), json_values, max_size=4)),
    }
    indent = draw(st.none() | st.integers(0, 3))
    return json.dumps(raw, indent=indent, ensure_ascii=draw(st.booleans())).encode()


@given(body=envelopes(), secret=secrets, other=secrets, t=timestamps)
def test_sign_then_verify_round_trips(body: bytes, secret: str, other: str, t: int) -> None:
    """Any envelope signed with any secret at any time verifies with that secret."""
    event = verify(
        body, {SIGNATURE_HEADER: sign(body, [other, secret], timestamp=t)}, secret, now=t
    )
    assert isinstance(event, Event)
    assert event.id == json.loads(body)["id"]


@given(body=st.binary(max_size=512), secret=secrets, t=timestamps)
def test_any_signed_bytes_pass_the_signature_check(body: bytes, secret: str, t: int) -> None:
    """For arbitrary bytes, the only possible failure after signing is the payload."""
    reason = None
    try:
        verify(body, {SIGNATURE_HEADER: sign(body, secret, timestamp=t)}, secret, now=t)
    except WebhookVerificationError as error:
        reason = error.reason
    assert reason in (None, VerificationFailure.INVALID_PAYLOAD)


@given(body=envelopes(), secret=secrets, data=st.data())
def test_any_single_byte_change_fails(body: bytes, secret: str, data: st.DataObject) -> None:
    """Changing any one byte of a signed body fails with no_matching_signature."""
    header = sign(body, secret, timestamp=T)
    index = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([new]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationError) as caught:
        verify(tampered, {SIGNATURE_HEADER: header}, secret, now=T)
    assert caught.value.reason is VerificationFailure.NO_MATCHING_SIGNATURE
