"""Saving a generation's outputs to disk: named by content, written atomically.

File names hold ids the server sends; an id is used as it is only when it has the
documented shape (``<prefix>_<ulid>``, contract §2), so that no answer can put a path
separator, ``..`` or any other surprise into a name.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import anyio

from .._client import AsyncAurous
from ..models import Generation

__all__ = ["file_id", "is_safe_name", "save_outputs", "write_atomically"]

#: The documented id shape: a lowercase prefix, ``_``, letters and digits.
_PLAIN_ID = re.compile(r"[a-z]{1,16}_[0-9A-Za-z]{1,64}")
#: What a name this module writes may hold (one path component, no leading dot).
_SAFE_NAME = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z_.-]{0,199}")


def file_id(generation_id: str) -> str:
    """``generation_id`` if it has the documented shape, else a stable stand-in for it."""
    if _PLAIN_ID.fullmatch(generation_id):
        return generation_id
    return "badid-" + hashlib.sha256(generation_id.encode("utf-8", "replace")).hexdigest()[:16]


def is_safe_name(name: object) -> bool:
    """``name`` is a plain file name inside the output directory (no separator, no ``..``)."""
    return isinstance(name, str) and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


async def save_outputs(
    client: AsyncAurous, generation: Generation, directory: Path, stem: str, *, video: bool
) -> list[str]:
    """Download every output of a succeeded ``generation`` into ``directory``.

    Files are ``{stem}.{ext}`` for a video and ``{stem}_{index}.{ext}`` for images, the
    extension read from the bytes; ``stem`` must be a safe name (see ``file_id``).
    Returns the file names, in output order.
    """
    if not is_safe_name(stem):
        raise ValueError(f"not a safe file name stem: {stem!r}")
    if video or generation.id.startswith("vid_"):
        path = directory / f"{stem}.mp4"
        await client.videos.save(generation, path)
        return [await _named_by_content(path, video=True)]
    names: list[str] = []
    count = len(generation.output_urls) or generation.image_count or 1
    for index in range(count):
        path = directory / f"{stem}_{index}.png"
        await client.images.save(generation, path, index=index)
        names.append(await _named_by_content(path, video=False))
    return names


async def _named_by_content(path: Path, *, video: bool) -> str:
    """Rename a streamed file whose first bytes call for another extension than the
    one it was saved under (a JPEG image, say); returns its final name."""
    head = await anyio.to_thread.run_sync(_head, path)
    name = f"{path.stem}.{_extension(head, video)}"
    if name != path.name:
        await anyio.to_thread.run_sync(os.replace, path, path.with_name(name))
    return name


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(16)


def _extension(data: bytes, video: bool) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" or video:
        return "mp4"
    return "bin"


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    # A file is either complete or absent, whenever the process dies.
    os.replace(partial, path)
