"""Webhook signatures and payloads as pure functions and values (contract A11, A12, §12).

No I/O: ``verify`` takes the raw body, the request headers and the secret(s), and
answers with a typed ``Event`` or raises ``WebhookVerificationError``. The aiohttp
receiver (``_webhook_receiver``) is a thin shell around it. Public through
``aurous_async.webhooks``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import TypeVar

import attrs

from . import _json, _wire
from ._errors import AurousError
from ._ratelimit import get_header
from .models import Balance, Character, EventType, Generation, WebhookEndpoint, _WireModel

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "Callback",
    "Event",
    "VerificationFailure",
    "WebhookVerificationError",
    "parse_callback",
    "sign",
    "verify",
]

#: The header that carries ``t=<unix>,v1=<hex>[,v1=<hex>...]``.
SIGNATURE_HEADER = "Aurous-Webhook-Signature"
#: Informational delivery headers; ``verify`` trusts only the signed body.
EVENT_ID_HEADER = "Aurous-Event-Id"
EVENT_TYPE_HEADER = "Aurous-Event-Type"
#: Seconds a delivery's timestamp may differ from the receiver's clock, either way (A11).
DEFAULT_TOLERANCE = 300.0

_T = TypeVar("_T")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
# Ten digits today; a bound keeps int() away from absurdly long inputs.
_MAX_TIMESTAMP_DIGITS = 15


class VerificationFailure(str, Enum):
    """Why a delivery was rejected (``WebhookVerificationError.reason``)."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
    NO_MATCHING_SIGNATURE = "no_matching_signature"
    INVALID_PAYLOAD = "invalid_payload"

    def __str__(self) -> str:
        return self.value


class WebhookVerificationError(AurousError, ValueError):
    """A webhook delivery failed verification, or its body is not a valid payload.

    Answer the delivery with a 4xx and do not act on it. The message never contains the
    secret.

    Attributes:
        reason: which check failed.
    """

    def __init__(self, message: str, *, reason: VerificationFailure) -> None:
        super().__init__(message)
        self.reason = reason

    def _details(self) -> list[tuple[str, object]]:
        return [("reason", self.reason.value)]


def _fail(reason: VerificationFailure, message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason)


def _secret_list(secret: str | Sequence[str]) -> tuple[str, ...]:
    """The secrets as a non-empty tuple of non-empty strings (a ``str`` is one secret)."""
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets:
        raise ValueError("at least one webhook secret is needed")
    for item in secrets:
        if not isinstance(item, str) or not item:
            raise ValueError("webhook secrets must be non-empty strings")
    return secrets


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    # Keyed with the full ``whsec_...`` text, over the header's literal ``t`` (A11).
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str | Sequence[str], *, timestamp: int | None = None) -> str:
    """Build an ``Aurous-Webhook-Signature`` value for ``body``, as Aurous does.

    For tests of your receiver; one ``v1=`` per secret, in the order given.

    Args:
        body: the exact bytes that will be sent.
        secret: the endpoint secret (``whsec_...``), or several (as during rotation).
        timestamp: Unix seconds for ``t=``; defaults to now.

    Raises:
        ValueError: no secret, or an empty one; a negative timestamp.
    """
    secrets = _secret_list(secret)
    stamp = int(time.time()) if timestamp is None else timestamp
    if stamp < 0:
        raise ValueError("timestamp must not be negative")
    text = str(stamp)
    return ",".join([f"t={text}", *(f"v1={_digest(s, text, bytes(body))}" for s in secrets)])


def _parse_signature(value: str) -> tuple[str, list[str]]:
    """``(t text, [v1 hex digests])``; other schemes (``v0=``, a future ``v2=``) ignored."""
    timestamp: str | None = None
    digests: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key, val = key.strip(), val.strip()
        if not sep or not key:
            raise _fail(VerificationFailure.MALFORMED_HEADER, "signature item is not key=value")
        if key == "t":
            if timestamp is not None:
                raise _fail(VerificationFailure.MALFORMED_HEADER, "signature has two t= values")
            if not (val.isascii() and val.isdigit() and len(val) <= _MAX_TIMESTAMP_DIGITS):
                raise _fail(
                    VerificationFailure.MALFORMED_HEADER, "signature t= is not Unix seconds"
                )
            timestamp = val
        elif key == "v1":
            if not _HEX_DIGEST.fullmatch(val):
                raise _fail(
                    VerificationFailure.MALFORMED_HEADER, "signature v1= is not a SHA-256 hex"
                )
            digests.append(val.lower())
    if timestamp is None:
        raise _fail(VerificationFailure.MALFORMED_HEADER, "signature has no t= timestamp")
    if not digests:
        raise _fail(VerificationFailure.MALFORMED_HEADER, "signature has no v1= value")
    return timestamp, digests


def _check_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    tolerance: float,
    now: float | None,
) -> None:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("verify() needs the raw request body as bytes, exactly as received")
    if math.isnan(tolerance) or tolerance < 0:
        raise ValueError("tolerance must be a non-negative number of seconds")
    secrets = _secret_list(secret)
    header = get_header(headers, SIGNATURE_HEADER)
    if header is None or not header.strip():
        raise _fail(VerificationFailure.MISSING_HEADER, f"no {SIGNATURE_HEADER} header")
    timestamp, candidates = _parse_signature(header)
    raw = bytes(body)
    expected = [_digest(s, timestamp, raw) for s in secrets]
    # Every pair is compared, so the time taken says nothing about which one matched.
    matched = False
    for candidate in candidates:
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise _fail(
            VerificationFailure.NO_MATCHING_SIGNATURE,
            "no v1 signature matches the secret(s) for this body",
        )
    # Checked after the signature: this reason then only ever describes an authentic
    # delivery that is too old or too new (a replay, or a skewed clock).
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise _fail(
            VerificationFailure.TIMESTAMP_OUTSIDE_TOLERANCE,
            f"signature timestamp is {current - int(timestamp):+.0f} s from now "
            f"(tolerance {tolerance:g} s)",
        )


def _load_object(body: bytes) -> dict[str, object]:
    try:
        payload = _json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise _fail(VerificationFailure.INVALID_PAYLOAD, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise _fail(VerificationFailure.INVALID_PAYLOAD, "body is not a JSON object")
    return payload


def _structure_payload(payload: object, cls: type[_T]) -> _T:
    try:
        return _wire.structure(payload, cls)
    except ValueError as exc:
        raise _fail(VerificationFailure.INVALID_PAYLOAD, str(exc)) from None


def _frozen_mapping(value: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(value))


def _family(event_type: EventType) -> str:
    return event_type.value.partition(".")[0]


@attrs.frozen
class Event(_WireModel):
    """One verified webhook delivery: the "AurousEvent" envelope (contract A11).

    ``type`` keeps values this SDK version does not know (``EventType("x.y")``), and
    ``data`` is the raw resource. The typed accessors decode ``data`` on each access,
    raising ``ValueError`` if it does not fit the model.

    ``to_dict()``/``to_json()`` give the envelope back as JSON data and ``from_dict``
    reads it again, to pass a verified event on to another process.

    Attributes:
        id: the ``evt_...`` id, the same on every retry of one delivery: deduplicate on it.
        type: ``image.completed``, ``character.failed``, ...
        created_at: when the event happened (aware, UTC).
        api_version: the version that shaped ``data``.
        synthetic: true for test fires (``webhook_endpoints.test``).
        data: the resource the event is about, as JSON-decoded data.
    """

    id: str
    # The converter keeps the type an ``EventType`` whatever the decoder hands over.
    type: EventType = attrs.field(converter=EventType)
    created_at: datetime = attrs.field()
    api_version: str | None = None
    synthetic: bool = False
    data: Mapping[str, object] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)

    @property
    def generation(self) -> Generation | None:
        """``data`` as a ``Generation`` for ``image.*`` and ``video.*`` events, else ``None``."""
        if _family(self.type) in ("image", "video"):
            return _wire.structure(self.data, Generation)
        return None

    @property
    def character(self) -> Character | None:
        """``data`` as a ``Character`` for ``character.*`` events, else ``None``."""
        if _family(self.type) == "character":
            return _wire.structure(self.data, Character)
        return None

    @property
    def balance(self) -> Balance | None:
        """``data`` as a ``Balance`` for ``usage.*`` events, else ``None``."""
        if _family(self.type) == "usage":
            return _wire.structure(self.data, Balance)
        return None

    @property
    def webhook_endpoint(self) -> WebhookEndpoint | None:
        """``data`` as a ``WebhookEndpoint`` for ``webhook.*`` events, else ``None``."""
        if _family(self.type) == "webhook":
            return _wire.structure(self.data, WebhookEndpoint)
        return None


@attrs.frozen
class Callback(_WireModel):
    """A per-generation ``webhook_url`` callback: ``{event, data}`` (contract A12, §8.8).

    Attributes:
        event: ``image.completed``, ``video.failed``, ... (older names are kept as-is).
        data: the generation, as JSON-decoded data.
    """

    event: EventType = attrs.field(converter=EventType)
    data: Mapping[str, object] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)

    @property
    def generation(self) -> Generation:
        """``data`` as a ``Generation``.

        Raises:
            ValueError: ``data`` does not fit the model.
        """
        return _wire.structure(self.data, Generation)


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Event:
    """Check a webhook delivery's signature, then decode its event.

    The signature (``Aurous-Webhook-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``) is
    an HMAC-SHA256, keyed with the full ``whsec_...`` secret, over ``<t>.<raw body>``.
    Any ``v1`` value may match any of the given secrets, so pass the old and the new
    secret while rotating. Nothing is parsed before the signature matches.

    Args:
        body: the raw request body, byte for byte (not re-serialized JSON).
        headers: the request headers; names match case-insensitively.
        secret: the endpoint's signing secret, or several.
        tolerance: seconds the ``t=`` timestamp may differ from ``now``, either way.
        now: the current Unix time; defaults to the system clock.

    Returns:
        The verified event.

    Raises:
        WebhookVerificationError: the header is missing or malformed, no signature
            matches, the timestamp is outside the tolerance, or the body is not an event.
        ValueError: no secret was given, or ``tolerance`` is negative.
        TypeError: ``body`` is not bytes.
    """
    _check_signature(body, headers, secret, tolerance, now)
    return _structure_payload(_load_object(body), Event)


def parse_callback(body: bytes) -> Callback:
    """Decode a per-generation ``webhook_url`` callback (contract A12).

    These callbacks are **not signed**, so anyone who learns the URL can forge one.
    Treat a callback as a hint and re-read the generation with
    ``client.images.get(callback.generation.id)``, or register a signed webhook endpoint
    (``client.webhook_endpoints.create``) and use ``verify`` instead.

    Raises:
        WebhookVerificationError: the body is not ``{"event": ..., "data": {...}}``
            (``reason`` is ``INVALID_PAYLOAD``).
    """
    return _structure_payload(_load_object(body), Callback)
