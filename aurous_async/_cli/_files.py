"""Saving a generation's outputs to disk: named by content, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from .._client import AsyncAurous
from ..models import Generation

__all__ = ["save_outputs", "write_atomically"]


async def save_outputs(
    client: AsyncAurous, generation: Generation, directory: Path, stem: str, *, video: bool
) -> list[str]:
    """Download every output of a succeeded ``generation`` into ``directory``.

    Files are ``{stem}.{ext}`` for a video and ``{stem}_{index}.{ext}`` for images, the
    extension read from the bytes. Returns the file names, in output order.
    """
    if video or generation.id.startswith("vid_"):
        data = await client.videos.download(generation)
        return [await _save(directory, f"{stem}.{_extension(data, True)}", data)]
    names: list[str] = []
    count = len(generation.output_urls) or generation.image_count or 1
    for index in range(count):
        data = await client.images.download(generation, index=index)
        names.append(await _save(directory, f"{stem}_{index}.{_extension(data, False)}", data))
    return names


async def _save(directory: Path, name: str, data: bytes) -> str:
    await anyio.to_thread.run_sync(write_atomically, directory / name, data)
    return name


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
