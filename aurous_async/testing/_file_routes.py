"""Routes: not written yet."""

from __future__ import annotations

from ._routing import Route

ROUTES: list[Route] = []
