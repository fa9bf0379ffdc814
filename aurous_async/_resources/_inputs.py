"""Reading user-supplied file inputs (paths or bytes) without blocking the event loop."""

from __future__ import annotations

import os

import anyio

__all__ = ["read_input"]


async def read_input(
    source: str | os.PathLike[str] | bytes, filename: str | None
) -> tuple[bytes, str | None]:
    """Return ``(data, filename)``: bytes as given, or a file's content and base name."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), filename
    path = anyio.Path(source)
    data = await path.read_bytes()
    return data, filename or path.name
