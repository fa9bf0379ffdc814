"""Signed ``?token=`` URLs for output bytes and upload PUTs (A4, §11)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_SECRET = os.urandom(32)


def make_token(path: str, expires_at: float) -> str:
    """A token binding ``path`` to an expiry instant (emulator clock, epoch seconds)."""
    expiry = str(int(expires_at))
    mac = hmac.new(_SECRET, f"{path}|{expiry}".encode(), hashlib.sha256).digest()[:18]
    return f"{expiry}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def check_token(path: str, token: str | None, now: float) -> str:
    """``"ok"``, ``"expired"`` or ``"invalid"`` for ``token`` on ``path`` at ``now``."""
    if not token or "." not in token:
        return "invalid"
    expiry, _, _ = token.partition(".")
    if not expiry.isdigit() or not hmac.compare_digest(make_token(path, int(expiry)), token):
        return "invalid"
    return "ok" if now < int(expiry) else "expired"
