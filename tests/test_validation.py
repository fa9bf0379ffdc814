from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurous_async import _validation as check
from aurous_async._errors import InvalidParameterError
from aurous_async.models import CharacterAttributes, GenerationStatus, LoraWeight

UTC = timezone.utc


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00" * 16
    )


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def _webp(kind: bytes, width: int, height: int) -> bytes:
    if kind == b"VP8 ":
        payload = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    elif kind == b"VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        payload = b"\x2f" + struct.pack("<I", bits)
    else:
        payload = (
            b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        )
    chunk = kind + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _refused(param: str, call: Callable[[], object]) -> InvalidParameterError:
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert info.value.param == param
    assert str(info.value).startswith(param)
    return info.value


def _blamed(call: Callable[[], object]) -> str | None:
    """The parameter a refusal names, or None when the call passes."""
    try:
        call()
    except InvalidParameterError as error:
        return error.param or "?"
    return None


# --- primitives --------------------------------------------------------------------------


def test_string_checks_type_length_and_blankness() -> None:
    """Strings must be strings of the right length, not only whitespace."""
    assert check.string("hi", "p", max_len=2) == "hi"
    _refused("p", lambda: check.string(5, "p"))
    _refused("p", lambda: check.string("", "p"))
    _refused("p", lambda: check.string("abc", "p", max_len=2))
    _refused("p", lambda: check.string(" \n\t", "p"))
    assert check.string("  ", "p", allow_blank=True) == "  "
    assert check.string("", "p", min_len=0) == ""


@pytest.mark.parametrize(("value", "ok"), [(1, True), (100, True), (0, False), (101, False)])
def test_integer_bounds_are_inclusive(value: int, ok: bool) -> None:
    """ge and le include the bounds."""
    if ok:
        assert check.integer(value, "steps", ge=1, le=100) == value
    else:
        error = _refused("steps", lambda: check.integer(value, "steps", ge=1, le=100))
        assert "between 1 and 100" in str(error)


@pytest.mark.parametrize("bad", [True, 1.0, "3", None])
def test_integer_refuses_bools_floats_and_strings(bad: object) -> None:
    """Only real ints are integers."""
    _refused("count", lambda: check.integer(bad, "count"))


@pytest.mark.parametrize("bad", [True, "7.5", float("nan"), float("inf"), None])
def test_number_refuses_non_finite_and_non_numbers(bad: object) -> None:
    """Numbers are finite ints or floats, never bools."""
    _refused("guidance_scale", lambda: check.number(bad, "guidance_scale"))


def test_number_bounds() -> None:
    """Numeric bounds are inclusive and named in the message."""
    assert check.number(0.1, "g", ge=0.1, le=30) == 0.1
    assert check.number(2, "g", ge=0.1) == 2
    assert ">= 0.1" in str(_refused("g", lambda: check.number(0.0, "g", ge=0.1)))
    assert "<= 2" in str(_refused("w", lambda: check.number(2.5, "w", le=2)))


def test_choice_accepts_members_and_string_enums() -> None:
    """Membership is by value; a str enum member counts as its value."""
    assert check.choice("480p", "resolution", check.VIDEO_RESOLUTIONS) == "480p"
    assert check.choice(GenerationStatus.QUEUED, "s", ["queued"]) == "queued"
    error = _refused(
        "resolution", lambda: check.choice("4k", "resolution", check.VIDEO_RESOLUTIONS)
    )
    assert "1080p" in str(error)


def test_items_checks_list_length_and_refuses_strings() -> None:
    """A list of min-max items; a lone string is not a list."""
    assert check.items(["a"], "refs", min_len=1, max_len=6) == ["a"]
    _refused("refs", lambda: check.items("abc", "refs"))
    _refused("refs", lambda: check.items([], "refs", min_len=1))
    _refused("refs", lambda: check.items(list(range(7)), "refs", max_len=6))


def test_exclusive_together_and_exactly_one() -> None:
    """Combination rules name the first offending parameter."""
    check.exclusive(a=None, b=None)
    check.exclusive(a=1, b=None)
    assert "mutually exclusive" in str(_refused("a", lambda: check.exclusive(a=1, b=2)))
    check.together(width=None, height=None)
    check.together(width=1024, height=1024)
    _refused("height", lambda: check.together(width=1024, height=None))
    check.exactly_one(a=1, b=None)
    _refused("a", lambda: check.exactly_one(a=None, b=None))
    _refused("b", lambda: check.exactly_one(a=1, b=2))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://example.com/x.jpg", True),
        ("HTTPS://example.com", True),
        ("http://example.com/x.jpg", False),
        ("https://", False),
        ("example.com/x.jpg", False),
        ("https://exa mple.com", False),
        ("https://e.com/" + "a" * 2040, False),
        ("ftp://example.com", False),
    ],
)
def test_url_requires_an_absolute_https_url(value: str, ok: bool) -> None:
    """Only absolute https URLs up to 2048 characters pass by default."""
    if ok:
        assert check.url(value, "url") == value
    else:
        _refused("url", lambda: check.url(value, "url"))


def test_file_or_url() -> None:
    """A file_ id or an https URL."""
    assert check.file_or_url("file_01HX", "first_frame_url") == "file_01HX"
    assert check.file_or_url("https://e.com/a.png", "first_frame_url")
    _refused("first_frame_url", lambda: check.file_or_url("img_01HX", "first_frame_url"))


def test_metadata_limits() -> None:
    """At most 50 string keys with string values of at most 500 characters."""
    assert check.metadata({"a": "b"}) == {"a": "b"}
    _refused("metadata", lambda: check.metadata({str(i): "v" for i in range(51)}))
    _refused("metadata", lambda: check.metadata({"a": "x" * 501}))
    _refused("metadata", lambda: check.metadata({"a": 1}))
    _refused("metadata", lambda: check.metadata(["a"]))


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        (None, True),
        ("550e8400-e29b-41d4-a716-446655440000", True),
        ("k" * 256, True),
        ("", False),
        ("k" * 257, False),
        ("two words", False),
        ("evil\r\nX-Api-Key: x", False),
        ("clé", False),
    ],
)
def test_idempotency_key(key: str | None, ok: bool) -> None:
    """1-256 visible ASCII characters: a key can never smuggle a header."""
    if ok:
        assert check.idempotency_key(key) == key
    else:
        _refused("idempotency_key", lambda: check.idempotency_key(key))


def test_paging_and_output_arguments() -> None:
    """limit 1-100, output index >= 0, byte ranges in order."""
    check.page_limit(None)
    check.page_limit(100)
    _refused("limit", lambda: check.page_limit(0))
    check.output_index(0)
    _refused("index", lambda: check.output_index(-1))
    check.byte_range(None, None)
    check.byte_range(0, 0)
    check.byte_range(10, None)
    check.byte_range(None, 99)
    _refused("end", lambda: check.byte_range(10, 9))
    _refused("start", lambda: check.byte_range(-1, None))


@given(st.text(max_size=300))
def test_string_never_raises_anything_but_invalid_parameter(value: str) -> None:
    """Any text either passes or is refused with InvalidParameterError."""
    assert _blamed(lambda: check.string(value, "prompt", max_len=200)) in (None, "prompt")


# --- image and video requests ------------------------------------------------------------

IMAGE_OK: dict[str, Any] = {"prompt": "A golden sunset over mountains"}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"size": "2k_16_9"},
        {"size": "4k_21_9", "count": 4, "enhance_prompt": True},
        {"width": 1024, "height": 4096},
        {"lora_id": "golden-hour"},
        {"loras": [LoraWeight("a"), LoraWeight("b", 0.0), LoraWeight("c", 2.0)]},
        {"loras": [{"lora": "a", "weight": 0.8}, {"lora": "b"}, LoraWeight("c", 2.0)]},
        {"character_id": "char_1", "denoise_strength": 0.6},
        {"reference_image_urls": ["file_1", "https://e.com/r.jpg"]},
        {"steps": 30, "guidance_scale": 7.5, "cfg_rescale": 0.7, "seed": 42},
        {"webhook_url": "http://127.0.0.1:8080/hook", "negative_prompt": "blurry"},
    ],
)
def test_valid_image_requests_pass(extra: dict[str, Any]) -> None:
    """Every documented combination is accepted."""
    extra = {k: v for k, v in extra.items() if k != "enhance_prompt"}
    check.image_request(**IMAGE_OK, **extra)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"negative_prompt": "x" * 4001}, "negative_prompt"),
        ({"size": "2k_1_1", "width": 1024, "height": 1024}, "size"),
        ({"size": "2k_1_1", "height": 1024}, "size"),
        ({"size": "square"}, "size"),
        ({"width": 1024}, "height"),
        ({"height": 1024}, "width"),
        ({"width": 512, "height": 1024}, "width"),
        ({"width": 1024, "height": 4097}, "height"),
        ({"lora_id": "a", "loras": [LoraWeight("b")]}, "lora_id"),
        ({"loras": []}, "loras"),
        ({"loras": [LoraWeight(str(i)) for i in range(5)]}, "loras"),
        ({"loras": [LoraWeight("a", 2.5)]}, "loras.weight"),
        ({"loras": [LoraWeight("", 1.0)]}, "loras.lora"),
        ({"loras": [{"lora": "a", "scale": 1.0}]}, "loras.scale"),
        ({"loras": [{"weight": 1.0}]}, "loras.lora"),
        ({"character_id": "char_1", "reference_image_urls": ["file_1"]}, "character_id"),
        ({"steps": 0}, "steps"),
        ({"steps": 101}, "steps"),
        ({"guidance_scale": 0.05}, "guidance_scale"),
        ({"guidance_scale": 31}, "guidance_scale"),
        ({"count": 0}, "count"),
        ({"count": 5}, "count"),
        ({"seed": 1.5}, "seed"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"reference_image_urls": []}, "reference_image_urls"),
        ({"reference_image_urls": ["file_1"] * 7}, "reference_image_urls"),
        ({"reference_image_urls": ["http://e.com/a.jpg"]}, "reference_image_urls"),
    ],
)
def test_invalid_image_requests_name_the_parameter(extra: dict[str, Any], param: str) -> None:
    """Each documented constraint of §8.3 and A5-A7 is enforced before sending."""
    _refused(param, lambda: check.image_request(**{**IMAGE_OK, **extra}))


def test_valid_video_requests_pass() -> None:
    """A documented video request is accepted."""
    check.video_request(
        video_lora_id="lora_01",
        prompt="waves",
        first_frame_url="file_01",
        last_frame_url="https://example.com/last.jpg",
        resolution="480p",
        ratio="16:9",
        duration=5,
        seed=-1,
        webhook_url="https://example.com/hook",
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"video_lora_id": ""}, "video_lora_id"),
        ({"resolution": "4k"}, "resolution"),
        ({"ratio": "2:1"}, "ratio"),
        ({"duration": 1}, "duration"),
        ({"duration": 13}, "duration"),
        ({"seed": -2}, "seed"),
        ({"first_frame_url": "https://e.com/" + "a" * 2048}, "first_frame_url"),
        ({"last_frame_url": "ftp://e.com/a.jpg"}, "last_frame_url"),
    ],
)
def test_invalid_video_requests_name_the_parameter(extra: dict[str, Any], param: str) -> None:
    """Each documented constraint of §8.9 is enforced before sending."""
    _refused(param, lambda: check.video_request(**{"video_lora_id": "lora_01", **extra}))


# --- files, uploads, characters, webhooks, usage ---------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (_png(1024, 768), "image/png"),
        (_jpeg(4096, 10), "image/jpeg"),
        (_webp(b"VP8 ", 640, 480), "image/webp"),
        (_webp(b"VP8L", 4096, 4096), "image/webp"),
        (_webp(b"VP8X", 100, 200), "image/webp"),
    ],
)
def test_image_bytes_detects_the_type_from_the_header(data: bytes, mime: str) -> None:
    """PNG, JPEG and WebP are recognised from their bytes."""
    assert check.image_bytes(data) == mime


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + b"\x00" * 20,
        _png(4097, 10),
        _jpeg(10, 5000),
        _webp(b"VP8X", 5000, 10),
        _png(0, 10),
        b"\xff\xd8\xff",
        _png(10, 10)[:20],
    ],
)
def test_image_bytes_refuses_other_types_and_sizes(data: bytes) -> None:
    """Other formats, broken headers and sides over 4096 px are refused."""
    _refused("file", lambda: check.image_bytes(data))


def test_image_bytes_refuses_more_than_ten_megabytes() -> None:
    """The byte limit is checked before anything else; limits can be lifted."""
    big = _png(100, 100) + b"\x00" * (10 * 1024 * 1024)
    _refused("file", lambda: check.image_bytes(big))
    assert check.image_bytes(big, max_bytes=None) == "image/png"
    assert check.image_bytes(_png(5000, 5000), max_side=None) == "image/png"


@given(st.binary(max_size=64))
def test_image_bytes_never_crashes_on_garbage(data: bytes) -> None:
    """Arbitrary bytes are identified or refused, never raise anything else."""
    assert _blamed(lambda: check.image_bytes(data)) in (None, "file")


def test_file_purpose() -> None:
    """Three documented purposes."""
    check.file_purpose("first_frame")
    _refused("purpose", lambda: check.file_purpose("avatar"))


@pytest.mark.parametrize(
    ("kwargs", "extension"),
    [
        ({"filename": "front.jpg", "content_type": "image/jpeg"}, "jpg"),
        ({"filename": "front.JPEG", "content_type": "image/jpeg"}, "jpeg"),
        ({"filename": "front", "content_type": "image/png"}, "png"),
        ({"filename": "front.png", "content_type": "image/webp"}, "webp"),
        ({"filename": "a.bin", "content_type": "image/webp", "extension": "webp"}, "webp"),
    ],
)
def test_upload_init_resolves_the_extension(kwargs: dict[str, Any], extension: str) -> None:
    """The extension comes from the file name when it matches, else from the type."""
    assert check.upload_init(**kwargs) == extension


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"filename": "", "content_type": "image/png"}, "filename"),
        ({"filename": "a" * 121, "content_type": "image/png"}, "filename"),
        ({"filename": "a.gif", "content_type": "image/gif"}, "content_type"),
        ({"filename": "a.png", "content_type": "image/png", "extension": "jpg"}, "extension"),
        ({"filename": "a.png", "content_type": "image/png", "extension": "tiff"}, "extension"),
    ],
)
def test_upload_init_refusals(kwargs: dict[str, Any], param: str) -> None:
    """Bad names, types and mismatched extensions are refused (§11)."""
    _refused(param, lambda: check.upload_init(**kwargs))


def test_non_empty_and_pose() -> None:
    """Ids are non-blank strings; poses are the five documented ones."""
    assert check.non_empty("upload_id", "upl_1") == "upl_1"
    _refused("upload_id", lambda: check.non_empty("upload_id", " "))
    check.pose("portrait")
    _refused("pose", lambda: check.pose("sideways"))


def test_character_create_needs_exactly_one_flow() -> None:
    """upload_ids (1-6) or generate=True, never both or neither."""
    check.character_create(name="Aurora", upload_ids=["upl_1"])
    check.character_create(name="Aurora", upload_ids=["upl_1"], generate=False)
    check.character_create(name="Aurora", generate=True, attributes={"age": 28})
    _refused("upload_ids", lambda: check.character_create(name="A"))
    _refused("upload_ids", lambda: check.character_create(name="A", generate=False))
    _refused(
        "upload_ids",
        lambda: check.character_create(name="A", upload_ids=["upl_1"], generate=True),
    )
    _refused("upload_ids", lambda: check.character_create(name="A", upload_ids=[]))
    _refused("upload_ids", lambda: check.character_create(name="A", upload_ids=["u"] * 7))
    _refused("name", lambda: check.character_create(name="", generate=True))
    _refused(
        "client_reference_id",
        lambda: check.character_create(name="A", generate=True, client_reference_id="x" * 257),
    )


def test_character_attributes() -> None:
    """The v1.0 attribute set: known keys, an integer age, string values."""
    assert check.character_attributes(CharacterAttributes(gender="female", age=28)) == {
        "gender": "female",
        "age": 28,
    }
    assert check.character_attributes({"hair_color": "black", "age": 30, "gender": None}) == {
        "hair_color": "black",
        "age": 30,
    }
    assert check.character_attributes(None) is None
    _refused("attributes.mood", lambda: check.character_attributes({"mood": "happy"}))
    _refused("attributes.age", lambda: check.character_attributes({"age": "28"}))
    _refused("attributes.gender", lambda: check.character_attributes({"gender": 1}))
    _refused("attributes", lambda: check.character_attributes(["age"]))
    check.character_update(name="New name")
    check.character_update(attributes={"eye_color": "green"})
    _refused("name", lambda: check.character_update(name=""))


def test_webhook_endpoint() -> None:
    """An absolute URL, at least one event, and bounded metadata."""
    check.webhook_endpoint(url="https://api.acme.dev/hook", events=["*"])
    check.webhook_endpoint(
        url="http://127.0.0.1:9000/hook",
        events=["image.completed"],
        description="",
        metadata={"team": "growth"},
    )
    _refused("url", lambda: check.webhook_endpoint(url="api.acme.dev", events=["*"]))
    _refused("events", lambda: check.webhook_endpoint(url="https://a.dev", events=[]))
    _refused("events", lambda: check.webhook_endpoint(url="https://a.dev", events="*"))
    _refused(
        "metadata",
        lambda: check.webhook_endpoint(
            url="https://a.dev", events=["*"], metadata={"k": "v" * 501}
        ),
    )


def test_event_and_ledger_types() -> None:
    """Documented enums for the test fire and the ledger filter."""
    check.event_type("webhook.endpoint_disabled")
    _refused("event_type", lambda: check.event_type("image.expired"))
    check.ledger_type(None)
    check.ledger_type("topup")
    _refused("type", lambda: check.ledger_type("bonus"))


def test_usage_query() -> None:
    """Aware datetimes in order, a known width, at most two known groups, limit 1-100."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    check.usage_query(start_time=start)
    check.usage_query(
        start_time=start,
        end_time=start + timedelta(days=7),
        bucket_width="1h",
        group_by=["status", "api_key_id"],
        limit=24,
    )
    _refused("start_time", lambda: check.usage_query(start_time=datetime(2026, 5, 1)))
    _refused("start_time", lambda: check.usage_query(start_time="2026-05-01T00:00:00Z"))
    _refused("end_time", lambda: check.usage_query(start_time=start, end_time=start))
    _refused("bucket_width", lambda: check.usage_query(start_time=start, bucket_width="2h"))
    _refused(
        "group_by",
        lambda: check.usage_query(start_time=start, group_by=["status", "type", "user_id"]),
    )
    _refused("group_by", lambda: check.usage_query(start_time=start, group_by=["colour"]))
    _refused("limit", lambda: check.usage_query(start_time=start, limit=101))


# --- typed parameter objects and their dict forms ------------------------------------------


def test_lora_stacks_take_typed_entries_and_dicts_alike() -> None:
    """Both forms give the same wire entries; a dict's weight defaults to LoraWeight's."""
    typed = check.lora_stack([LoraWeight("a", 0.5), LoraWeight("b")])
    as_dicts = check.lora_stack([{"lora": "a", "weight": 0.5}, {"lora": "b"}])
    assert typed == as_dicts == [{"lora": "a", "weight": 0.5}, {"lora": "b", "weight": 1.0}]
    assert check.lora_stack(({"lora": "a", "weight": 2},)) == [{"lora": "a", "weight": 2}]


@pytest.mark.parametrize(
    ("stack", "param", "words"),
    [
        (
            [{"lora": "a", "wieght": 0.8}],
            "loras.wieght",
            ["unknown key 'wieght'", "loras[0]", "allowed keys: lora, weight"],
        ),
        (
            [{"lora": "a"}, {"weight": 0.8}],
            "loras.lora",
            ["missing required key 'lora'", "loras[1]"],
        ),
        ([{"lora": None, "weight": 0.8}], "loras.lora", ["missing required key 'lora'"]),
        ([{"lora": 7}], "loras.lora", ["must be a string, got int", "loras[0]"]),
        ([{"lora": "a", "weight": "0.8"}], "loras.weight", ["must be a number, got str"]),
        ([{"lora": "a"}, {"lora": "b", "weight": 2.5}], "loras.weight", ["between", "loras[1]"]),
        (["golden-hour"], "loras", ["loras[0] must be a LoraWeight or a dict, got str"]),
        ({"lora": "a"}, "loras", ["must be a list, got dict"]),
        ([{1: "a"}], "loras", ["unknown key 1"]),
    ],
)
def test_bad_lora_dicts_name_the_real_problem(stack: object, param: str, words: list[str]) -> None:
    """An unknown key, a missing key or a wrong type is named, with the entry at fault."""
    error = _refused(param, lambda: check.lora_stack(stack))
    for word in words:
        assert word in str(error)
    assert "NoneType" not in str(error)


def test_bad_attribute_dicts_name_the_real_problem() -> None:
    """An unknown attribute names the allowed keys; a wrong value names field and type."""
    unknown = _refused("attributes.mood", lambda: check.character_attributes({"mood": "happy"}))
    assert "unknown key 'mood'" in str(unknown)
    assert "allowed keys: gender, age, ethnicity" in str(unknown)
    wrong = _refused("attributes.age", lambda: check.character_attributes({"age": "28"}))
    assert "must be an integer, got str" in str(wrong)
    neither = _refused("attributes", lambda: check.character_attributes(["age"]))
    assert "CharacterAttributes or a dict, got list" in str(neither)


def test_the_documented_attribute_set_is_the_model() -> None:
    """CHARACTER_ATTRIBUTES and the CharacterAttributes fields are the same keys, in order."""
    assert tuple(field.name for field in attrs.fields(CharacterAttributes)) == (
        check.CHARACTER_ATTRIBUTES
    )
