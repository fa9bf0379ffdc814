"""The API's resources as frozen attrs models, and its enums. No I/O.

Models mirror the documented JSON (contract §8-§12) field for field. Fields the
contract does not promise on every response default to ``None`` (lists to ``()``), the
constant ``object`` discriminator is not modelled, unknown fields are ignored and
unknown enum values are kept verbatim, so a server addition never breaks a caller.
Instants are aware UTC datetimes; money is a float number of credits.

``request_id``: every top-level model (what one API call returns) has a keyword-only
``request_id``, the ``Aurous-Request-Id`` of the response that carried it, set by the
client after decoding. It is not part of the wire shape and does not take part in
equality. Nested models (``Cost``, ``CharacterRef``, ...) have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypedDict, TypeVar

import attrs

__all__ = [
    "TERMINAL_STATUSES",
    "Balance",
    "BillingMode",
    "Character",
    "CharacterAttributes",
    "CharacterAttributesDict",
    "CharacterRef",
    "CharacterStatus",
    "Cost",
    "CostBreakdown",
    "DeletedCharacter",
    "DeletedFile",
    "DeletedWebhookEndpoint",
    "Estimate",
    "EventType",
    "File",
    "FilePurpose",
    "Generation",
    "GenerationStatus",
    "ImagePricing",
    "Lora",
    "LoraRef",
    "LoraWeight",
    "LoraWeightDict",
    "MediaType",
    "OpenStrEnum",
    "Pose",
    "Pricing",
    "Team",
    "UploadClassification",
    "UploadTicket",
    "UsageBucket",
    "UsageEvent",
    "UsageEventType",
    "UsageGroup",
    "UsageMetrics",
    "VideoLora",
    "VideoPricing",
    "WebhookEndpoint",
    "WebhookTestFire",
]

#: Marks fields that come from the response, not its body; the converter skips them.
RESPONSE_META = "aurous_response_meta"
_META = {RESPONSE_META: True}


class OpenStrEnum(str, Enum):
    """A string enum that keeps values it does not know.

    ``GenerationStatus("rendering")`` returns a pseudo-member whose ``value`` is
    ``"rendering"``: it compares equal to the string, round-trips, and is not one of the
    declared members.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    def __str__(self) -> str:
        return str(self.value)


_M = TypeVar("_M", bound="_WireModel")


class _WireModel:
    """What every model can do to leave the process: ``to_dict``, ``to_json``, ``from_dict``.

    The conversions are the SDK's wire rules (``_wire``), so ``Model.from_dict(m.to_dict())
    == m`` for every model ``m``.
    """

    # No instance dict: the models stay slotted.
    __slots__ = ()

    def to_dict(self) -> dict[str, object]:
        """This model as JSON-ready data, in the shape the API sends.

        Field names are the API's; timestamps are RFC 3339 UTC strings with ``Z``
        (``"2026-05-04T10:00:14Z"``); enums are their string values (unknown ones as
        they came); nested models are dicts and sequences are lists; unset optional
        fields are ``None``. ``request_id`` is not part of the body and is left out.
        A ``WebhookEndpoint`` from a create or rotate answer includes its ``secret``.
        """
        # Imported here: ``_wire`` imports this module.
        from ._wire import to_json_data

        return to_json_data(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON text.

        Args:
            indent: spaces per nesting level; ``None`` for compact text on one line.
        """
        from ._wire import to_json_text

        return to_json_text(self, indent=indent)

    @classmethod
    def from_dict(cls: type[_M], data: Mapping[str, object]) -> _M:
        """Read a model back from ``to_dict()`` output (or the API's JSON for it).

        Unknown keys are ignored and ``None`` means the field's default, as for
        responses.

        Raises:
            ValueError: ``data`` does not fit the model; the message names the fields.
        """
        from ._wire import structure

        return structure(data, cls)


# --- enums -----------------------------------------------------------------------------


class GenerationStatus(OpenStrEnum):
    """The lifecycle of a generation (contract A2)."""

    QUEUED = "queued"
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    MODERATION_REJECTED = "moderation_rejected"


#: Statuses that never change again. An unknown status is not terminal.
TERMINAL_STATUSES: frozenset[GenerationStatus] = frozenset(
    {
        GenerationStatus.SUCCEEDED,
        GenerationStatus.FAILED,
        GenerationStatus.CANCELLED,
        GenerationStatus.EXPIRED,
        GenerationStatus.MODERATION_REJECTED,
    }
)


class MediaType(OpenStrEnum):
    """What a generation renders."""

    IMAGE = "image"
    VIDEO = "video"


class CharacterStatus(OpenStrEnum):
    """The lifecycle of a character (contract §11, A13)."""

    SYNTHESIZING = "synthesizing"
    REVIEWING = "reviewing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


class Pose(OpenStrEnum):
    """The pose of a character reference image."""

    PORTRAIT = "portrait"
    FRONT = "front"
    SIDE = "side"
    BACK = "back"
    OTHER = "other"


class FilePurpose(OpenStrEnum):
    """What an uploaded file is for."""

    REFERENCE = "reference"
    FIRST_FRAME = "first_frame"
    LAST_FRAME = "last_frame"


class UsageEventType(OpenStrEnum):
    """The kind of a credit ledger movement (contract A20)."""

    HOLD = "hold"
    RELEASE = "release"
    CHARGE = "charge"
    REFUND = "refund"
    TOPUP = "topup"
    ADJUSTMENT = "adjustment"


class BillingMode(OpenStrEnum):
    """How a team is billed; an unknown mode should be treated as non-gating."""

    METERED = "metered"
    EXEMPT = "exempt"


class EventType(OpenStrEnum):
    """Webhook event types (contract §12.2)."""

    IMAGE_COMPLETED = "image.completed"
    IMAGE_FAILED = "image.failed"
    IMAGE_CANCELLED = "image.cancelled"
    VIDEO_COMPLETED = "video.completed"
    VIDEO_FAILED = "video.failed"
    VIDEO_CANCELLED = "video.cancelled"
    CHARACTER_COMPLETED = "character.completed"
    CHARACTER_FAILED = "character.failed"
    CHARACTER_CANCELLED = "character.cancelled"
    USAGE_BALANCE_LOW = "usage.balance_low"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"


# --- request-side helpers --------------------------------------------------------------


@attrs.frozen
class LoraWeight(_WireModel):
    """One entry of a multi-LoRA stack (contract A6).

    Args:
        lora: a LoRA id or slug.
        weight: its strength, 0.0-2.0.
    """

    lora: str
    weight: float = 1.0


class _LoraWeightKeys(TypedDict):
    lora: str


class LoraWeightDict(_LoraWeightKeys, total=False):
    """A ``LoraWeight`` written as a dict, accepted wherever a ``LoraWeight`` is:
    ``{"lora": "golden-hour-photography", "weight": 0.8}`` (``weight`` defaults to 1.0).
    """

    weight: float


# --- generations -----------------------------------------------------------------------


@attrs.frozen
class CostBreakdown(_WireModel):
    """The lines of a cost, in credits."""

    base: float | None = None
    enhance: float | None = None


@attrs.frozen
class Cost(_WireModel):
    """A cost in credits: held while a generation runs, charged once it is terminal."""

    amount: float
    currency: str = "credit"
    breakdown: CostBreakdown | None = None


@attrs.frozen
class LoraRef(_WireModel):
    """A style resolved for a generation (a bundle shows as one entry)."""

    id: str
    name: str | None = None
    weight: float | None = None


@attrs.frozen
class Generation(_WireModel):
    """An image or video generation (contract §8.2); videos have ``vid_`` ids."""

    id: str
    status: GenerationStatus
    created_at: datetime
    prompt: str | None = None
    negative_prompt: str | None = None
    completed_at: datetime | None = None
    media_type: MediaType | None = None
    output_urls: tuple[str, ...] = ()
    output_video_url: str | None = None
    reference_image_urls: tuple[str, ...] = ()
    error_message: str | None = None
    duration_ms: int | None = None
    cost: Cost | None = None
    width: int | None = None
    height: int | None = None
    image_count: int | None = None
    size_preset: str | None = None
    inference_type: str | None = None
    cfg_rescale: float | None = None
    denoise_strength: float | None = None
    seed: int | None = None
    video_duration: int | None = None
    video_resolution: str | None = None
    video_ratio: str | None = None
    video_camera_fixed: bool | None = None
    character_id: str | None = None
    bundle_name: str | None = None
    loras: tuple[LoraRef, ...] = ()
    aurous_version: str | None = None
    creation_request_id: str | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)

    @property
    def is_terminal(self) -> bool:
        """Whether the status can no longer change (an unknown status is not terminal)."""
        return self.status in TERMINAL_STATUSES

    @property
    def kind(self) -> MediaType:
        """``MediaType.VIDEO`` or ``MediaType.IMAGE``, from ``media_type`` or the id prefix."""
        if self.media_type is MediaType.IMAGE or self.media_type is MediaType.VIDEO:
            return self.media_type
        return MediaType.VIDEO if self.id.startswith("vid_") else MediaType.IMAGE


@attrs.frozen
class Estimate(_WireModel):
    """The price of a request, without creating anything."""

    estimated_cost: Cost
    currency: str = "credit"
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)

    @property
    def amount(self) -> float:
        """The estimated amount in credits."""
        return self.estimated_cost.amount


# --- LoRAs -----------------------------------------------------------------------------


@attrs.frozen
class Lora(_WireModel):
    """An image style (contract §8.10)."""

    id: str
    name: str
    is_public: bool
    created_at: datetime
    slug: str | None = None
    description: str | None = None
    preview_image_url: str | None = None
    default_denoise_strength: float | None = None
    default_guidance_scale: float | None = None
    default_steps: int | None = None
    has_template: bool | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class VideoLora(_WireModel):
    """A video model (contract §8.10)."""

    id: str
    name: str
    is_public: bool
    created_at: datetime
    default_resolution: str | None = None
    default_ratio: str | None = None
    default_duration: int | None = None
    slug: str | None = None
    description: str | None = None
    preview_video_url: str | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


# --- files -----------------------------------------------------------------------------


@attrs.frozen
class File(_WireModel):
    """An uploaded reference image; purged at ``expires_at`` (contract §10)."""

    id: str
    purpose: FilePurpose
    created_at: datetime
    mime_type: str | None = None
    size_bytes: int | None = None
    width_px: int | None = None
    height_px: int | None = None
    url: str | None = None
    expires_at: datetime | None = None
    metadata: Mapping[str, object] = attrs.field(factory=dict)
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class DeletedFile(_WireModel):
    """The answer to a file purge (always 200, idempotent)."""

    id: str
    deleted: bool
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


# --- characters ------------------------------------------------------------------------


@attrs.frozen
class CharacterAttributes(_WireModel):
    """How a character looks; also the ``attributes`` of create and update."""

    gender: str | None = None
    age: int | None = None
    ethnicity: str | None = None
    hair_color: str | None = None
    hair_style: str | None = None
    eye_color: str | None = None
    body_type: str | None = None
    additional_details: str | None = None


class CharacterAttributesDict(TypedDict, total=False):
    """``CharacterAttributes`` written as a dict, accepted wherever they are:
    ``{"gender": "female", "age": 28}``; every key is optional.
    """

    gender: str
    age: int
    ethnicity: str
    hair_color: str
    hair_style: str
    eye_color: str
    body_type: str
    additional_details: str


@attrs.frozen
class CharacterRef(_WireModel):
    """One reference render of a character; ``url`` lives about 24 h."""

    pose: Pose
    url: str | None = None


@attrs.frozen
class Character(_WireModel):
    """A reusable character (contract §11)."""

    id: str
    status: CharacterStatus
    created_at: datetime
    name: str | None = None
    refs: tuple[CharacterRef, ...] = ()
    updated_at: datetime | None = None
    attributes: CharacterAttributes | None = None
    error_message: str | None = None
    aurous_version: str | None = None
    client_reference_id: str | None = None
    deleted_at: datetime | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class UploadTicket(_WireModel):
    """A signed URL to PUT one character reference image to (no API key on the PUT)."""

    upload_id: str
    upload_url: str
    upload_headers: Mapping[str, str] = attrs.field(factory=dict)
    expires_at: datetime | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class UploadClassification(_WireModel):
    """The detected pose of an upload, with a confidence in 0-1."""

    upload_id: str
    pose: Pose
    confidence: float | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class DeletedCharacter(_WireModel):
    """The answer to a character delete."""

    id: str
    deleted: bool
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


# --- webhooks --------------------------------------------------------------------------


@attrs.frozen
class WebhookEndpoint(_WireModel):
    """A registered webhook receiver (contract §12.1).

    ``secret`` is set only on the create and rotate answers, and is left out of repr.
    """

    id: str
    url: str
    events: tuple[EventType, ...] = ()
    description: str | None = None
    secret_preview: str | None = None
    secret: str | None = attrs.field(default=None, repr=False)
    is_active: bool | None = None
    consecutive_failures: int | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class WebhookTestFire(_WireModel):
    """A synthetic, signed delivery was enqueued."""

    endpoint_id: str
    event_id: str
    enqueued: bool
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class DeletedWebhookEndpoint(_WireModel):
    """The answer to an endpoint delete; ``deleted`` is false when nothing was there."""

    id: str
    deleted: bool
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


# --- account ---------------------------------------------------------------------------


@attrs.frozen
class Balance(_WireModel):
    """The credit balance: ``credits`` = ``available_credits`` + ``held_credits``."""

    credits: float
    held_credits: float
    available_credits: float
    currency: str = "credit"
    billing_mode: BillingMode | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class Team(_WireModel):
    """The team the API key belongs to."""

    id: str
    name: str
    created_at: datetime | None = None
    credits: float | None = None
    billing_email: str | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class ImagePricing(_WireModel):
    """The image rate card."""

    base: float
    enhance_prompt_multiplier: float | None = None
    reference_image_per_image: float | None = None


@attrs.frozen
class VideoPricing(_WireModel):
    """The video rate card: ``base_per_second`` x resolution factor x seconds."""

    base_per_second: float
    resolution_factor: Mapping[str, float] = attrs.field(factory=dict)


@attrs.frozen
class Pricing(_WireModel):
    """The rate card of an API version; ``/estimate`` gives exact prices."""

    version: str
    currency: str = "credit"
    description: str | None = None
    image: ImagePricing | None = None
    video: VideoPricing | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class UsageMetrics(_WireModel):
    """Aggregated usage of one group in one time bucket."""

    request_count: int | None = None
    successful_count: int | None = None
    failed_count: int | None = None
    cancelled_count: int | None = None
    credits_used: float | None = None
    duration_ms_p50: float | None = None
    duration_ms_p95: float | None = None
    image_count: int | None = None
    video_seconds: float | None = None
    total_input_tokens: int | None = None
    total_output_tokens: int | None = None


@attrs.frozen
class UsageGroup(_WireModel):
    """The metrics of one ``group_by`` key combination."""

    key: Mapping[str, str] = attrs.field(factory=dict)
    metrics: UsageMetrics = attrs.field(factory=UsageMetrics)


@attrs.frozen
class UsageBucket(_WireModel):
    """One time bucket of ``GET /v1/usage``."""

    bucket_start: datetime
    bucket_end: datetime
    groups: tuple[UsageGroup, ...] = ()
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)


@attrs.frozen
class UsageEvent(_WireModel):
    """One credit ledger movement; ``amount`` is unsigned, ``type`` gives the sign."""

    id: str
    type: UsageEventType
    amount: float
    created_at: datetime
    currency: str = "credit"
    generation_id: str | None = None
    hold_id: str | None = None
    description: str | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False, metadata=_META)
