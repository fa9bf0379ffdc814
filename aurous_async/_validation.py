"""Client-side checks of documented request constraints; each raises ``InvalidParameterError``.

Checkers are pure: they return the (unchanged) value or raise, naming the parameter as
the API does. The request-level checkers (``image_request``, ``video_request``, ...)
encode the contract's constraints so nothing invalid is ever sent; anything the
contract leaves open is left to the server.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import attrs

from ._errors import InvalidParameterError
from .models import CharacterAttributes, LoraWeight

__all__ = [
    "CHARACTER_ATTRIBUTES",
    "FILE_MAX_BYTES",
    "FILE_MAX_SIDE",
    "FILE_PURPOSES",
    "IMAGE_SIZE_PRESETS",
    "LEDGER_TYPES",
    "POSES",
    "TEST_EVENT_TYPES",
    "UPLOAD_CONTENT_TYPES",
    "UPLOAD_EXTENSIONS",
    "USAGE_BUCKET_WIDTHS",
    "USAGE_GROUP_BY",
    "VIDEO_RATIOS",
    "VIDEO_RESOLUTIONS",
    "byte_range",
    "character_attributes",
    "character_create",
    "character_update",
    "choice",
    "event_type",
    "exactly_one",
    "exclusive",
    "file_or_url",
    "file_purpose",
    "idempotency_key",
    "image_bytes",
    "image_request",
    "integer",
    "items",
    "ledger_type",
    "lora_stack",
    "metadata",
    "non_empty",
    "number",
    "output_index",
    "page_limit",
    "parameter_object",
    "pose",
    "string",
    "together",
    "upload_init",
    "url",
    "usage_query",
    "video_request",
    "webhook_endpoint",
]

_RATIOS = ("1_1", "3_2", "2_3", "4_3", "3_4", "16_9", "9_16", "21_9")
#: ``size`` presets of contract A5: ``<tier>_<w>_<h>``.
IMAGE_SIZE_PRESETS = frozenset(f"{tier}_{ratio}" for tier in ("2k", "4k") for ratio in _RATIOS)
VIDEO_RESOLUTIONS = ("480p", "720p", "1080p")
VIDEO_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
POSES = ("portrait", "front", "side", "back", "other")
FILE_PURPOSES = ("reference", "first_frame", "last_frame")
LEDGER_TYPES = ("hold", "release", "charge", "refund", "topup", "adjustment")
#: The event types ``POST /v1/webhook_endpoints/{id}/test`` accepts (§12.1).
TEST_EVENT_TYPES = (
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "character.completed",
    "character.failed",
    "character.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
)
#: The fixed attribute set of v1.0 (§11): ``age`` is an integer, the rest free strings.
CHARACTER_ATTRIBUTES = (
    "gender",
    "age",
    "ethnicity",
    "hair_color",
    "hair_style",
    "eye_color",
    "body_type",
    "additional_details",
)
UPLOAD_CONTENT_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
UPLOAD_EXTENSIONS = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}
USAGE_BUCKET_WIDTHS = ("1m", "5m", "15m", "1h", "1d", "7d")
# The aggregated-usage reference lists these four. ``model`` (usage overview page only)
# groups chat and embedding usage, out of scope here (A17); the API refuses it.
USAGE_GROUP_BY = ("status", "api_key_id", "user_id", "type")
FILE_MAX_BYTES = 10 * 1024 * 1024
FILE_MAX_SIDE = 4096

_PROMPT_MAX = 4000
_URL_MAX = 2048
# Visible ASCII only: a key travels in a header, so no control characters (CR/LF).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def _fail(param: str, message: str) -> InvalidParameterError:
    return InvalidParameterError(f"{param}: {message}", param=param)


def non_empty(param: str, value: object) -> str:
    """A string with something other than whitespace in it (an id, a slug, a name)."""
    return string(value, param)


# --- primitives ------------------------------------------------------------------------


def string(
    value: object,
    param: str,
    *,
    min_len: int = 1,
    max_len: int | None = None,
    allow_blank: bool = False,
) -> str:
    """A string of ``min_len``-``max_len`` characters, not only whitespace by default."""
    if not isinstance(value, str):
        raise _fail(param, f"must be a string, got {type(value).__name__}")
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        bound = f"{min_len}-{max_len}" if max_len is not None else f"at least {min_len}"
        raise _fail(param, f"must be {bound} characters long, got {len(value)}")
    if value and not allow_blank and not value.strip():
        raise _fail(param, "must not be only whitespace")
    return value


def integer(value: object, param: str, *, ge: int | None = None, le: int | None = None) -> int:
    """An ``int`` (not a ``bool``) within ``ge``-``le`` inclusive."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(param, f"must be an integer, got {type(value).__name__}")
    _bounds(value, param, ge, le)
    return value


def number(value: object, param: str, *, ge: float | None = None, le: float | None = None) -> float:
    """A finite ``int`` or ``float`` (not a ``bool``) within ``ge``-``le`` inclusive."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _fail(param, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise _fail(param, f"must be a finite number, got {value!r}")
    _bounds(value, param, ge, le)
    return value


def _bounds(value: float, param: str, ge: float | None, le: float | None) -> None:
    if (ge is not None and value < ge) or (le is not None and value > le):
        if ge is not None and le is not None:
            expected = f"between {ge} and {le}"
        elif ge is not None:
            expected = f">= {ge}"
        else:
            expected = f"<= {le}"
        raise _fail(param, f"must be {expected}, got {value!r}")


def choice(value: object, param: str, choices: Collection[str]) -> str:
    """One of ``choices`` (a string enum member counts as its value)."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(sorted(choices))
        raise _fail(param, f"must be one of {allowed}; got {value!r}")
    return value


def items(
    values: object, param: str, *, min_len: int = 0, max_len: int | None = None
) -> Sequence[object]:
    """A list or tuple (never a lone string) of ``min_len``-``max_len`` items."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise _fail(param, f"must be a list, got {type(values).__name__}")
    if len(values) < min_len or (max_len is not None and len(values) > max_len):
        bound = f"{min_len}-{max_len}" if max_len is not None else f"at least {min_len}"
        raise _fail(param, f"must have {bound} items, got {len(values)}")
    return values


def _set(values: Mapping[str, object]) -> list[str]:
    return [name for name, value in values.items() if value is not None]


def exclusive(**values: object) -> None:
    """At most one of the named parameters is set (not ``None``)."""
    given = _set(values)
    if len(given) > 1:
        raise _fail(given[0], f"{' and '.join(given)} are mutually exclusive")


def together(**values: object) -> None:
    """Either all of the named parameters are set, or none."""
    given = _set(values)
    if given and len(given) < len(values):
        missing = [name for name in values if name not in given]
        raise _fail(missing[0], f"{' and '.join(values)} must be given together")


def exactly_one(**values: object) -> None:
    """Exactly one of the named parameters is set."""
    given = _set(values)
    if len(given) != 1:
        names = ", ".join(values)
        raise _fail(
            given[1] if given else next(iter(values)), f"exactly one of {names} is required"
        )


def url(
    value: object,
    param: str,
    *,
    schemes: Collection[str] = ("https",),
    max_len: int = _URL_MAX,
) -> str:
    """An absolute URL with one of ``schemes`` and a host, at most ``max_len`` characters."""
    text = string(value, param, max_len=max_len)
    parts = urlsplit(text)
    if parts.scheme.lower() not in schemes or not parts.netloc or any(c.isspace() for c in text):
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise _fail(param, f"must be an absolute {allowed} URL, got {text!r:.80}")
    return text


def file_or_url(value: object, param: str) -> str:
    """A ``file_…`` id from ``/v1/files`` or a public ``https://`` URL (<= 2048 chars)."""
    text = string(value, param, max_len=_URL_MAX)
    if text.startswith("file_"):
        return text
    return url(text, param)


def metadata(
    value: object, param: str = "metadata", *, max_keys: int = 50, max_value_len: int = 500
) -> Mapping[str, str]:
    """A string-to-string mapping of at most ``max_keys`` keys and ``max_value_len`` values."""
    if not isinstance(value, Mapping):
        raise _fail(param, f"must be a mapping, got {type(value).__name__}")
    if len(value) > max_keys:
        raise _fail(param, f"must have at most {max_keys} keys, got {len(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _fail(param, "keys and values must be strings")
        if len(item) > max_value_len:
            raise _fail(param, f"value of {key!r} is longer than {max_value_len} characters")
    return value


def parameter_object(
    value: object,
    param: str,
    model: type,
    *,
    required: Collection[str] = (),
    position: str | None = None,
) -> dict[str, object]:
    """A typed parameter object (an instance of the attrs class ``model``) or its dict
    form, as a dict of the fields that are set (not ``None``).

    A dict may hold only ``model``'s field names; each name in ``required`` must be set.
    Values are not checked here.

    Args:
        value: what the caller passed.
        param: the parameter to blame (a bad key ``k`` is blamed as ``<param>.k``).
        model: the typed form.
        required: the fields that must be set.
        position: which item of a list ``value`` is (``"loras[2]"``), for the message.
    """
    names = tuple(field.name for field in attrs.fields(model))
    where = f" (in {position})" if position else ""
    if isinstance(value, model):
        fields = {name: getattr(value, name) for name in names}
    elif isinstance(value, Mapping):
        for key in value:
            if key not in names:
                raise _fail(
                    f"{param}.{key}" if isinstance(key, str) else param,
                    f"unknown key {key!r}{where}; allowed keys: {', '.join(names)}",
                )
        fields = dict(value)
    else:
        subject = f"{position} " if position else ""
        raise _fail(
            param,
            f"{subject}must be a {model.__name__} or a dict, got {type(value).__name__}",
        )
    for name in required:
        if fields.get(name) is None:
            raise _fail(f"{param}.{name}", f"missing required key {name!r}{where}")
    return {name: item for name, item in fields.items() if item is not None}


@contextlib.contextmanager
def _located(position: str) -> Iterator[None]:
    """Add which list item is at fault to the message of a refusal raised inside."""
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{exc.message} (in {position})", param=exc.param) from None


def lora_stack(loras: object) -> list[dict[str, object]]:
    """A LoRA stack as its wire entries ``{"lora": ..., "weight": ...}`` (A6).

    1-4 entries, each a ``models.LoraWeight`` or a dict with its keys (``weight``
    defaults to 1.0, as in ``LoraWeight``), weights 0.0-2.0.
    """
    stack: list[dict[str, object]] = []
    default_weight = attrs.fields(LoraWeight).weight.default
    for index, entry in enumerate(items(loras, "loras", min_len=1, max_len=4)):
        position = f"loras[{index}]"
        fields = parameter_object(entry, "loras", LoraWeight, required=("lora",), position=position)
        weight = fields.get("weight", default_weight)
        with _located(position):
            string(fields["lora"], "loras.lora")
            number(weight, "loras.weight", ge=0.0, le=2.0)
        stack.append({"lora": fields["lora"], "weight": weight})
    return stack


# --- request parts ---------------------------------------------------------------------


def idempotency_key(key: str | None) -> str | None:
    """A caller's ``Idempotency-Key``: 1-256 visible ASCII characters (``None`` passes)."""
    if key is None:
        return None
    string(key, "idempotency_key", max_len=256)
    if not _HEADER_SAFE.fullmatch(key):
        raise _fail("idempotency_key", "must contain only visible ASCII characters")
    return key


def page_limit(limit: int | None) -> None:
    """A page size of 1-100 (``None`` for the server default)."""
    if limit is not None:
        integer(limit, "limit", ge=1, le=100)


def output_index(index: int) -> None:
    """A zero-based output index."""
    integer(index, "index", ge=0)


def byte_range(start: int | None, end: int | None) -> None:
    """Inclusive byte offsets of a ``Range`` request: ``0 <= start <= end``."""
    if start is not None:
        integer(start, "start", ge=0)
    if end is not None:
        integer(end, "end", ge=0 if start is None else start)


def _prompt(value: object, param: str) -> None:
    string(value, param, max_len=_PROMPT_MAX)


def image_request(
    *,
    prompt: str,
    negative_prompt: str | None = None,
    lora_id: str | None = None,
    loras: Sequence[object] | None = None,
    character_id: str | None = None,
    size: str | None = None,
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    cfg_rescale: float | None = None,
    denoise_strength: float | None = None,
    seed: int | None = None,
    count: int | None = None,
    webhook_url: str | None = None,
    reference_image_urls: Sequence[str] | None = None,
) -> None:
    """The documented constraints of an image create or estimate (§8.3, A5-A7).

    ``loras`` items are ``models.LoraWeight`` objects or their dicts (``lora_stack``).
    ``webhook_url`` may be ``http`` or ``https``: its scheme rules are not documented.
    """
    _prompt(prompt, "prompt")
    if negative_prompt is not None:
        _prompt(negative_prompt, "negative_prompt")
    exclusive(lora_id=lora_id, loras=loras)
    exclusive(character_id=character_id, reference_image_urls=reference_image_urls)
    if size is not None:
        if width is not None or height is not None:
            raise _fail("size", "size and width/height are mutually exclusive")
        choice(size, "size", IMAGE_SIZE_PRESETS)
    together(width=width, height=height)
    if width is not None:
        integer(width, "width", ge=1024, le=4096)
    if height is not None:
        integer(height, "height", ge=1024, le=4096)
    if lora_id is not None:
        string(lora_id, "lora_id")
    if loras is not None:
        lora_stack(loras)
    if character_id is not None:
        string(character_id, "character_id")
    if steps is not None:
        integer(steps, "steps", ge=1, le=100)
    if guidance_scale is not None:
        number(guidance_scale, "guidance_scale", ge=0.1, le=30.0)
    if cfg_rescale is not None:
        number(cfg_rescale, "cfg_rescale")
    if denoise_strength is not None:
        number(denoise_strength, "denoise_strength")
    if seed is not None:
        integer(seed, "seed")
    if count is not None:
        integer(count, "count", ge=1, le=4)
    if webhook_url is not None:
        url(webhook_url, "webhook_url", schemes=("http", "https"))
    if reference_image_urls is not None:
        for ref in items(reference_image_urls, "reference_image_urls", min_len=1, max_len=6):
            file_or_url(ref, "reference_image_urls")


def video_request(
    *,
    video_lora_id: str,
    prompt: str | None = None,
    first_frame_url: str | None = None,
    last_frame_url: str | None = None,
    resolution: str | None = None,
    ratio: str | None = None,
    duration: int | None = None,
    seed: int | None = None,
    webhook_url: str | None = None,
) -> None:
    """The documented constraints of a video create or estimate (§8.9)."""
    string(video_lora_id, "video_lora_id")
    if prompt is not None:
        string(prompt, "prompt")
    if first_frame_url is not None:
        file_or_url(first_frame_url, "first_frame_url")
    if last_frame_url is not None:
        file_or_url(last_frame_url, "last_frame_url")
    if resolution is not None:
        choice(resolution, "resolution", VIDEO_RESOLUTIONS)
    if ratio is not None:
        choice(ratio, "ratio", VIDEO_RATIOS)
    if duration is not None:
        integer(duration, "duration", ge=2, le=12)
    if seed is not None:
        integer(seed, "seed", ge=-1)
    if webhook_url is not None:
        url(webhook_url, "webhook_url", schemes=("http", "https"))


# --- files and uploads -----------------------------------------------------------------


def file_purpose(purpose: object) -> None:
    """``reference``, ``first_frame`` or ``last_frame``."""
    choice(purpose, "purpose", FILE_PURPOSES)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


def _image_size(data: bytes) -> tuple[str, int, int] | None:
    """``(mime type, width, height)`` from a PNG, JPEG or WebP header, else ``None``."""
    try:
        if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return "image/png", width, height
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    pos = 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            return None
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return "image/jpeg", width, height
        pos += length
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    kind = data[12:16]
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return "image/webp", width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return "image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "image/webp", width, height
    return None


def image_bytes(
    data: bytes,
    param: str = "file",
    *,
    max_bytes: int | None = FILE_MAX_BYTES,
    max_side: int | None = FILE_MAX_SIDE,
) -> str:
    """A PNG, JPEG or WebP image within the ``/v1/files`` limits; returns its MIME type.

    The type and size come from the header bytes, never from a file name.

    Args:
        data: the image.
        param: the parameter to blame.
        max_bytes: the size limit (10 MB for files; ``None`` for none).
        max_side: the pixel limit per side (4096 for files; ``None`` for none).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise _fail(param, f"must be at most {max_bytes} bytes, got {len(data)}")
    info = _image_size(data)
    if info is None or info[1] < 1 or info[2] < 1:
        raise _fail(param, "must be a PNG, JPEG or WebP image")
    mime, width, height = info
    if max_side is not None and max(width, height) > max_side:
        raise _fail(param, f"must be at most {max_side} px per side, got {width}x{height}")
    return mime


def upload_init(*, filename: object, content_type: object, extension: object = None) -> str:
    """Check a character upload ticket request; return the ``extension`` to send.

    Without ``extension``, the file name's suffix is used when it is a known one, else
    the content type's. An extension that contradicts the content type is refused.
    """
    name = string(filename, "filename", max_len=120)
    mime = choice(content_type, "content_type", UPLOAD_CONTENT_TYPES)
    if extension is None:
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        extension = suffix if UPLOAD_EXTENSIONS.get(suffix) == mime else UPLOAD_CONTENT_TYPES[mime]
    ext = choice(extension, "extension", UPLOAD_EXTENSIONS)
    if UPLOAD_EXTENSIONS[ext] != mime:
        raise _fail("extension", f"{ext!r} does not match content_type {mime!r}")
    return ext


# --- characters ------------------------------------------------------------------------


def pose(value: object) -> None:
    """One of the five reference poses."""
    choice(value, "pose", POSES)


def character_attributes(attributes: object) -> dict[str, object] | None:
    """The v1.0 attribute set as its wire object: known keys only, ``age`` an integer,
    the rest strings; ``None`` passes.

    ``attributes`` is a ``models.CharacterAttributes`` or a dict with its keys; keys
    set to ``None`` are left out.
    """
    if attributes is None:
        return None
    fields = parameter_object(attributes, "attributes", CharacterAttributes)
    for key, value in fields.items():
        if key == "age":
            integer(value, "attributes.age", ge=0)
        else:
            string(value, f"attributes.{key}")
    return fields


def character_create(
    *,
    name: object,
    upload_ids: Sequence[object] | None = None,
    generate: bool | None = None,
    attributes: object = None,
    client_reference_id: object = None,
) -> None:
    """Exactly one flow: ``upload_ids`` (1-6) or ``generate=True`` (§11)."""
    non_empty("name", name)
    synthesize = generate is True
    if synthesize == (upload_ids is not None):
        raise _fail("upload_ids", "give exactly one of upload_ids or generate=True")
    if upload_ids is not None:
        for upload_id in items(upload_ids, "upload_ids", min_len=1, max_len=6):
            non_empty("upload_ids", upload_id)
    character_attributes(attributes)
    if client_reference_id is not None:
        string(client_reference_id, "client_reference_id", max_len=256)


def character_update(*, name: object = None, attributes: object = None) -> None:
    """The mutable fields of a character: ``name`` and ``attributes``."""
    if name is not None:
        non_empty("name", name)
    character_attributes(attributes)


# --- webhooks and usage ----------------------------------------------------------------

# ``webhook_endpoint``'s parameters shadow these two checkers.
_url = url
_metadata = metadata


def webhook_endpoint(
    *,
    url: object,
    events: Sequence[object],
    description: object = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """An endpoint registration (§12.1).

    The API refuses plain ``http://``; the scheme is left to the server so that a local
    emulator (which may allow ``http``) can be used in tests.
    """
    _url(url, "url", schemes=("http", "https"))
    for event in items(events, "events", min_len=1):
        non_empty("events", event)
    if description is not None:
        string(description, "description", min_len=0)
    if metadata is not None:
        _metadata(metadata)


def event_type(value: object) -> None:
    """One of the documented event types (the ``test`` fire's enum)."""
    choice(value, "event_type", TEST_EVENT_TYPES)


def ledger_type(value: object) -> None:
    """A ledger event type filter, or ``None``."""
    if value is not None:
        choice(value, "type", LEDGER_TYPES)


def usage_query(
    *,
    start_time: object,
    end_time: object = None,
    bucket_width: object = None,
    group_by: Sequence[object] | None = None,
    limit: int | None = None,
) -> None:
    """A ``GET /v1/usage`` query: aware datetimes in order, known widths and groups."""
    start = _aware(start_time, "start_time")
    if end_time is not None and _aware(end_time, "end_time") <= start:
        raise _fail("end_time", "must be after start_time")
    if bucket_width is not None:
        choice(bucket_width, "bucket_width", USAGE_BUCKET_WIDTHS)
    if group_by is not None:
        for group in items(group_by, "group_by", max_len=2):
            choice(group, "group_by", USAGE_GROUP_BY)
    page_limit(limit)


def _aware(value: object, param: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _fail(param, "must be a timezone-aware datetime")
    return value
