"""The webhook signature the emulator puts on deliveries (contract A11, §12.3).

Pure functions, no I/O. Written independently of the SDK's ``webhooks`` module on
purpose: if both sides shared one implementation, a signing bug would verify anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
_ALPHABET = string.ascii_letters + string.digits


def new_secret(length: int = 32) -> str:
    """A fresh ``whsec_`` secret with ``length`` random base62 characters."""
    return SECRET_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def secret_preview(secret: str) -> str:
    """The display form ``whsec_8jK...wxyz``: prefix, three characters, dots, last four."""
    tail = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return f"{SECRET_PREFIX}{tail[:3]}...{tail[-4:]}"


def v1_digest(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 keyed with the full ``whsec_…`` string over ``<t>.<raw body>``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets_: Iterable[str], timestamp: int) -> str:
    """The ``Aurous-Webhook-Signature`` value: ``t=<unix>,v1=<hex>[,v1=<hex>…]``.

    One ``v1=`` per secret, in the order given (the current secret first, then any
    rotated-out secret still inside its grace period).
    """
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={v1_digest(secret, timestamp, body)}" for secret in secrets_)
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign a delivery")
    return ",".join(parts)
