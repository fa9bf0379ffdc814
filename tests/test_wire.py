from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aurous_async._wire import (
    _fast,
    converter,
    format_datetime,
    parse_datetime,
    structure,
    unstructure,
)
from aurous_async.models import (
    TERMINAL_STATUSES,
    Balance,
    BillingMode,
    Character,
    CharacterAttributes,
    CharacterStatus,
    Cost,
    CostBreakdown,
    DeletedCharacter,
    DeletedFile,
    Estimate,
    EventType,
    File,
    FilePurpose,
    Generation,
    GenerationStatus,
    Lora,
    LoraRef,
    MediaType,
    Pose,
    Pricing,
    Team,
    UploadClassification,
    UploadTicket,
    UsageBucket,
    UsageEvent,
    UsageEventType,
    VideoLora,
    WebhookEndpoint,
    WebhookTestFire,
)

FIXTURES = Path(__file__).parent / "fixtures"
UTC = timezone.utc

#: Fixture file -> (model, where the model's objects are in the file).
CASES: dict[str, tuple[type[Any], str]] = {
    "generation.json": (Generation, "object"),
    "list_generations.json": (Generation, "data"),
    "estimate.json": (Estimate, "object"),
    "balance.json": (Balance, "object"),
    "team.json": (Team, "object"),
    "loras.json": (Lora, "array"),
    "video_lora.json": (VideoLora, "object"),
    "file.json": (File, "object"),
    "file_deleted.json": (DeletedFile, "object"),
    "character.json": (Character, "object"),
    "upload_ticket.json": (UploadTicket, "object"),
    "upload_classification.json": (UploadClassification, "object"),
    "character_deleted.json": (DeletedCharacter, "object"),
    "webhook_endpoint.json": (WebhookEndpoint, "object"),
    "webhook_test_fire.json": (WebhookTestFire, "object"),
    "pricing.json": (Pricing, "object"),
    "usage.json": (UsageBucket, "data"),
    "usage_event.json": (UsageEvent, "object"),
}
ERROR_FIXTURES = {"error_balance_too_low.json", "error_rate_limit.json"}  # see test_errors.py


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def payloads(name: str) -> list[Any]:
    """The JSON objects of a fixture that each structure into its model."""
    data = load(name)
    where = CASES[name][1]
    if where == "data":
        return list(data["data"])
    if where == "array":
        return list(data)
    return [data]


def test_every_fixture_is_covered() -> None:
    """Each golden file of contract §16 has a model test (errors live in test_errors)."""
    on_disk = {p.name for p in FIXTURES.glob("*.json")}
    assert on_disk == set(CASES) | ERROR_FIXTURES


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_fixture_structures_and_round_trips(name: str) -> None:
    """A documented payload structures into its model, and unstructure -> structure is stable."""
    model = CASES[name][0]
    for payload in payloads(name):
        value = structure(payload, model)
        assert isinstance(value, model)
        assert structure(unstructure(value), model) == value


#: Free-form JSON objects: their keys are data, not fields.
FREE_FORM = {"metadata", "upload_headers", "key", "resolution_factor"}


def _with_extras(value: Any) -> Any:
    """Add an unknown field to every JSON object that is a model, at every depth."""
    if isinstance(value, dict):
        extended = {k: v if k in FREE_FORM else _with_extras(v) for k, v in value.items()}
        extended["added_in_2027"] = {"nested": [1, "two", None]}
        return extended
    if isinstance(value, list):
        return [_with_extras(item) for item in value]
    return value


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_fields_are_ignored(name: str) -> None:
    """A server addition at any depth does not change or break the decoded model."""
    model = CASES[name][0]
    for payload in payloads(name):
        assert structure(_with_extras(payload), model) == structure(payload, model)


def test_the_generation_fixture() -> None:
    """Every documented field of §8.2 lands in the model, typed."""
    gen = structure(load("generation.json"), Generation)
    assert gen.id == "img_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    assert gen.status is GenerationStatus.SUCCEEDED
    assert gen.is_terminal
    assert gen.kind is MediaType.IMAGE
    assert gen.created_at == datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)
    assert gen.completed_at == datetime(2026, 5, 4, 10, 0, 14, tzinfo=UTC)
    assert gen.cost == Cost(2.0, "credit", CostBreakdown(base=1.0, enhance=1.0))
    assert gen.loras == (LoraRef("lora_01HXMQ7Z3K8Y2ABCDEFGHJKM", "Sunset Style"),)
    assert gen.output_urls[0].endswith("/output/0?token=tok_7f3a9c2e41b84d6f")
    assert (gen.width, gen.height, gen.seed, gen.duration_ms) == (2048, 2048, 42, 14820)
    assert gen.video_camera_fixed is None  # the docs' example shows {} here
    assert gen.creation_request_id == "req_01HXMQ7Z3K8Y2ABCDEFGHJKM"


def test_nulls_take_the_field_default() -> None:
    """A null list, mapping or optional field decodes to its default."""
    video = structure(load("list_generations.json")["data"][1], Generation)
    assert video.kind is MediaType.VIDEO
    assert video.status is GenerationStatus.PROCESSING
    assert not video.is_terminal
    assert video.reference_image_urls == ()
    assert video.output_urls == ()
    assert video.completed_at is None
    assert video.video_camera_fixed is True


def test_the_other_fixtures() -> None:
    """Spot checks of each model's typed fields."""
    assert structure(load("estimate.json"), Estimate).amount == 2.0
    balance = structure(load("balance.json"), Balance)
    assert balance.billing_mode is BillingMode.METERED
    assert balance.available_credits == 1019.49
    assert structure(load("team.json"), Team).created_at == datetime(2026, 1, 15, tzinfo=UTC)
    (lora,) = structure(load("loras.json"), list[Lora])
    assert (lora.slug, lora.default_steps, lora.has_template) == (
        "golden-hour-photography",
        30,
        True,
    )
    file = structure(load("file.json"), File)
    assert file.purpose is FilePurpose.REFERENCE
    assert file.metadata == {"campaign": "launch-2026"}
    character = structure(load("character.json"), Character)
    assert character.status is CharacterStatus.READY
    assert character.refs[0].pose is Pose.FRONT
    assert character.attributes == CharacterAttributes(
        gender="female",
        age=28,
        ethnicity="east-asian",
        hair_color="black",
        hair_style="shoulder-length straight",
        eye_color="brown",
        body_type="athletic",
        additional_details="small scar above right eyebrow; warm smile",
    )
    ticket = structure(load("upload_ticket.json"), UploadTicket)
    assert ticket.upload_headers == {"Content-Type": "image/jpeg"}
    endpoint = structure(load("webhook_endpoint.json"), WebhookEndpoint)
    assert endpoint.events == (EventType.IMAGE_COMPLETED, EventType.IMAGE_FAILED)
    assert endpoint.last_success_at is None
    pricing = structure(load("pricing.json"), Pricing)
    assert pricing.video is not None
    assert pricing.video.resolution_factor == {"480p": 1.0, "720p": 1.5, "1080p": 2.5}
    (bucket,) = [structure(b, UsageBucket) for b in load("usage.json")["data"]]
    assert bucket.groups[0].metrics.request_count == 142
    assert bucket.groups[0].key["status"] == "completed"
    assert structure(load("usage_event.json"), UsageEvent).type is UsageEventType.TOPUP


def test_the_webhook_secret_is_not_in_repr() -> None:
    """The plaintext secret is readable but never printed."""
    endpoint = structure(load("webhook_endpoint.json"), WebhookEndpoint)
    assert endpoint.secret == "whsec_8jKpQ4nXabc1234abcdef567890"
    assert "whsec_8jKpQ4nXabc1234abcdef567890" not in repr(endpoint)
    assert "whsec_8jK...wxyz" in repr(endpoint)


@pytest.mark.parametrize(
    ("enum", "value"),
    [
        (GenerationStatus, "rendering"),
        (MediaType, "audio"),
        (CharacterStatus, "archived"),
        (Pose, "three_quarter"),
        (FilePurpose, "mask"),
        (UsageEventType, "expiry"),
        (BillingMode, "prepaid"),
        (EventType, "image.expired"),
    ],
)
def test_unknown_enum_values_are_kept(enum: Any, value: str) -> None:
    """A new server value decodes to a pseudo-member that equals and round-trips the string."""
    member = enum(value)
    assert isinstance(member, enum)
    assert member == value
    assert member.value == value
    assert str(member) == value
    assert member not in list(enum)
    assert enum(value) == member
    assert structure(value, enum) == member
    assert unstructure(member) == value


def test_an_unknown_status_is_not_terminal_and_round_trips() -> None:
    """A generation in an unknown status decodes, is not terminal and re-encodes verbatim."""
    payload = {**load("generation.json"), "status": "rendering"}
    gen = structure(payload, Generation)
    assert gen.status == "rendering"
    assert not gen.is_terminal
    assert unstructure(gen)["status"] == "rendering"


def test_terminal_statuses() -> None:
    """A2: five terminal states; queued, pending and processing are not."""
    assert {s.value for s in TERMINAL_STATUSES} == {
        "succeeded",
        "failed",
        "cancelled",
        "expired",
        "moderation_rejected",
    }


def test_kind_falls_back_to_the_id_prefix() -> None:
    """Old rows without media_type are told apart by their id."""
    base = {"status": "queued", "created_at": "2026-05-04T10:00:00Z", "media_type": None}
    assert structure({**base, "id": "vid_1"}, Generation).kind is MediaType.VIDEO
    assert structure({**base, "id": "img_1"}, Generation).kind is MediaType.IMAGE
    assert structure({**base, "id": "img_1", "media_type": "audio"}, Generation).kind is (
        MediaType.IMAGE
    )


def test_request_id_is_response_metadata() -> None:
    """request_id is never read from or written to the body, and does not affect equality."""
    payload = {**load("generation.json"), "request_id": "req_from_body"}
    gen = structure(payload, Generation)
    assert gen.request_id is None
    tagged = attrs.evolve(gen, request_id="req_header")
    assert tagged.request_id == "req_header"
    assert tagged == gen
    assert "request_id" not in unstructure(tagged)
    assert "req_header" in repr(tagged)


def test_a_missing_required_field_is_a_value_error() -> None:
    """A body that does not fit its model raises ValueError naming the field."""
    with pytest.raises(ValueError, match="status"):
        structure({"id": "img_1", "created_at": "2026-05-04T10:00:00Z"}, Generation)
    with pytest.raises(ValueError, match="Generation"):
        structure(["not", "an", "object"], Generation)
    with pytest.raises(ValueError, match="created_at"):
        structure({"id": "img_1", "status": "queued", "created_at": "yesterday"}, Generation)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-04T10:00:00Z", datetime(2026, 5, 4, 10, tzinfo=UTC)),
        ("2026-05-04T10:00:00.5Z", datetime(2026, 5, 4, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-05-04T10:00:00.123456789Z", datetime(2026, 5, 4, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-05-04T12:00:00+02:00", datetime(2026, 5, 4, 10, tzinfo=UTC)),
        ("2026-05-04T05:30:00-0430", datetime(2026, 5, 4, 10, tzinfo=UTC)),
        ("2026-05-04 10:00:00", datetime(2026, 5, 4, 10, tzinfo=UTC)),
        ("2026-05-04t10:00:00z", datetime(2026, 5, 4, 10, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    """RFC 3339 variants all become aware UTC datetimes."""
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("bad", ["", "2026-05-04", "10:00:00", "2026-13-40T10:00:00Z", True, None])
def test_parse_datetime_refuses_what_is_not_a_timestamp(bad: object) -> None:
    """Dates without a time, garbage and non-strings are errors."""
    with pytest.raises((ValueError, TypeError)):
        parse_datetime(bad)


def test_format_datetime_writes_utc_with_z() -> None:
    """Instants are written back as RFC 3339 UTC with Z."""
    moment = datetime(2026, 5, 4, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(moment) == "2026-05-04T10:00:00Z"
    assert format_datetime(datetime(2026, 5, 4, 10, 0, 0, 250000)) == "2026-05-04T10:00:00.25Z"


@given(st.datetimes(timezones=st.timezones()))
def test_datetimes_round_trip(moment: datetime) -> None:
    """format -> parse gives back the same instant, in UTC."""
    parsed = parse_datetime(format_datetime(moment))
    assert parsed == moment.astimezone(UTC)
    assert parsed.tzinfo is UTC


def test_drop_none_leaves_out_unset_fields() -> None:
    """Request bodies can be made without nulls, at every depth."""
    attributes = CharacterAttributes(gender="female", age=28)
    assert unstructure(attributes, drop_none=True) == {"gender": "female", "age": 28}
    assert unstructure(attributes)["eye_color"] is None
    assert unstructure([attributes], drop_none=True) == [{"gender": "female", "age": 28}]


_iso = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(format_datetime)
_json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)

_generation = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["img_01", "vid_01"]),
        "status": st.sampled_from([s.value for s in GenerationStatus]) | st.text(min_size=1),
        "created_at": _iso,
    },
    optional={
        "prompt": st.none() | st.text(),
        "completed_at": st.none() | _iso,
        "media_type": st.none() | st.sampled_from(["image", "video", "hologram"]),
        "output_urls": st.none() | st.lists(st.text()),
        "cost": st.none()
        | st.fixed_dictionaries(
            {"amount": st.floats(0, 1e6)},
            optional={"breakdown": st.fixed_dictionaries({"base": st.floats(0, 10)})},
        ),
        "width": st.none() | st.integers(0, 4096),
        "seed": st.none() | st.integers(-(2**31), 2**31),
        "loras": st.none()
        | st.lists(st.fixed_dictionaries({"id": st.text()}, optional={"name": st.text()})),
        "video_camera_fixed": st.none() | st.booleans(),
    },
).flatmap(
    lambda known: st.dictionaries(
        st.text().filter(lambda k: k not in attrs.fields_dict(Generation)), _json, max_size=3
    ).map(lambda extra: {**extra, **known})
)


@given(_generation)
def test_any_documented_generation_shape_structures(payload: dict[str, Any]) -> None:
    """Generated generation bodies, with unknown fields mixed in, decode and re-encode stably."""
    gen = structure(payload, Generation)
    assert gen.id == payload["id"]
    assert gen.status == payload["status"]
    assert gen.created_at.tzinfo is UTC
    assert structure(unstructure(gen), Generation) == gen


def test_parse_datetime_accepts_epoch_numbers_and_datetimes() -> None:
    """Epoch seconds and naive or aware datetimes are read as instants in UTC."""
    assert parse_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_datetime(datetime(2026, 5, 4, 10)) == datetime(2026, 5, 4, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), (" False ", False), (1, True), (0, False)]
)
def test_booleans_are_read_strictly(value: object, expected: bool) -> None:
    """A required flag accepts JSON booleans and their obvious spellings only."""
    payload = {"id": "file_1", "deleted": value}
    assert structure(payload, DeletedFile).deleted is expected


@pytest.mark.parametrize("value", ["yes", 2, {}, [], 0.5])
def test_a_required_flag_that_is_not_a_boolean_is_refused(value: object) -> None:
    """Anything else is a decoding error, not a silent truthiness test."""
    with pytest.raises(ValueError, match="deleted"):
        structure({"id": "file_1", "deleted": value}, DeletedFile)


def test_strings_accept_scalars_but_not_structures() -> None:
    """An id sent as a number is read as its text; an object is refused."""
    assert structure({"id": 42, "deleted": True}, DeletedFile).id == "42"
    with pytest.raises(ValueError, match="id"):
        structure({"id": {"a": 1}, "deleted": True}, DeletedFile)


#: Values a body might hold where it should not: text for numbers, numbers for text, odd
#: flags, timestamps in other spellings or out of range, unknown enum values.
_odd_scalar = st.sampled_from(
    [
        "",
        "1",
        " 2 ",
        "1.5",
        "١٢",
        "inf",
        "true",
        " False ",
        "yes",
        "rendering",
        "video",
        "2026-05-04t10:00:00z",
        "2026-05-04T12:00:00+02:00",
        "2026-05-04T24:00:00Z",
        "2026-02-30T10:00:00Z",
        True,
        False,
        0,
        2,
        1.0,
        0.5,
        None,
    ]
)
_odd_structure = st.one_of(
    st.lists(_odd_scalar, max_size=2),
    st.dictionaries(st.sampled_from(["amount", "currency", "breakdown"]), _odd_scalar),
    st.lists(st.dictionaries(st.sampled_from(["id", "name", "weight"]), _odd_scalar)),
    _json,
)
_LEFT_OUT = object()


def _edited(payload: dict[str, Any], edits: list[tuple[str, object]], frozen: bool) -> Any:
    """``payload`` with some fields set to other values or left out, as a dict or a
    read-only mapping."""
    edited = dict(payload)
    for name, value in edits:
        if value is _LEFT_OUT:
            edited.pop(name, None)
        else:
            edited[name] = value
    return MappingProxyType(edited) if frozen else edited


_generation_field = st.sampled_from(sorted(attrs.fields_dict(Generation)))
_any_generation = st.builds(
    _edited,
    st.sampled_from(payloads("generation.json") + payloads("list_generations.json")),
    st.builds(
        list.__add__,
        st.lists(st.tuples(_generation_field, _odd_scalar), min_size=1, max_size=3),
        st.lists(st.tuples(_generation_field, _odd_structure | st.just(_LEFT_OUT)), max_size=2),
    ),
    st.booleans(),
)


def _decoded(conv: cattrs.Converter, payload: object) -> str:
    """The ``repr`` of what ``conv`` decodes (it tells ``1`` from ``1.0``), or ``"fails"``."""
    try:
        return repr(conv.structure(payload, Generation))
    except Exception:
        return "fails"


@settings(max_examples=500)
@given(_any_generation)
def test_the_generated_decoder_agrees_with_the_detailed_converter(payload: Any) -> None:
    """The fast converter's decoder gives what the detailed one gives, and fails where it does."""
    assert _decoded(_fast, payload) == _decoded(converter, payload)


def _replace_char(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


_plain_utc = st.datetimes().map(
    lambda moment: f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%SZ")
)
_near_plain_utc = st.builds(
    _replace_char, _plain_utc, st.integers(0, 19), st.sampled_from("0123456789-:TZ +٢")
)


def _parsed(text: str) -> str:
    """The ``repr`` of the parsed ``text``, or its error (in lower case)."""
    try:
        return repr(parse_datetime(text))
    except ValueError as exc:
        return f"ValueError: {exc}".lower()


@example("2026-05-04T24:00:00Z")
@example("2026-02-30T10:00:00Z")
@example("2026-05-04T10:00:0٢Z")
@given(_plain_utc | _near_plain_utc)
def test_the_timestamp_fast_path_agrees_with_the_general_parser(text: str) -> None:
    """``YYYY-MM-DDTHH:MM:SSZ`` parses (or fails) as the general parser reads it spelt with
    ``t`` and ``z``, which the fast path leaves to it."""
    assert _parsed(text) == _parsed(text.lower())
