"""``client.files`` end to end against the emulator."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import anyio
import pytest
from _sdk_helpers import emulated, png

from aurous_async import DeletedFile, File, FilePurpose, InvalidParameterError, NotFoundError
from aurous_async._validation import image_bytes
from aurous_async.testing import Fault

pytestmark = pytest.mark.anyio


async def test_upload_bytes_get_and_delete() -> None:
    """A file uploads as multipart, reads back with a fresh URL, and purges idempotently."""
    async with emulated() as (emu, client):
        f = await client.files.create(png(80, 60), purpose="reference", metadata={"k": "v"})
        assert isinstance(f, File)
        assert f.id.startswith("file_")
        assert f.purpose == FilePurpose.REFERENCE
        assert (f.width_px, f.height_px) == (80, 60)
        assert f.mime_type == "image/png"
        assert f.metadata == {"k": "v"}
        assert f.url is not None
        assert emu.requests[-1].bucket == "files"
        again = await client.files.get(f.id)
        assert again.id == f.id
        gone = await client.files.delete(f.id)
        assert isinstance(gone, DeletedFile)
        assert gone.deleted is True
        assert (await client.files.delete(f.id)).id == f.id
        with pytest.raises(NotFoundError):
            await client.files.get(f.id)


async def test_upload_from_a_path(tmp_path: Path) -> None:
    """A path uploads its bytes under its own file name."""
    path = anyio.Path(tmp_path / "ref.png")
    await path.write_bytes(png())
    async with emulated() as (_, client):
        f = await client.files.create(tmp_path / "ref.png", purpose="first_frame")
        assert f.purpose == FilePurpose.FIRST_FRAME
        assert f.size_bytes == len(png())


async def test_multipart_upload_is_retried_once_under_its_key() -> None:
    """A lost answer to an upload is retried with the same key; one file exists."""
    async with emulated() as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/files"))
        f = await client.files.create(png(), purpose="reference")
        statuses = [r.status for r in emu.requests if r.path == "/v1/files"]
        assert statuses == [201, 201]
        assert (await client.files.get(f.id)).id == f.id


def _jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof + b"\xff\xd9"


def _webp_vp8x(width: int, height: int) -> bytes:
    payload = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(payload)) + b"WEBPVP8X" + b"\x0a\0\0\0" + payload


def test_image_headers_are_read_offline() -> None:
    """PNG, JPEG and WebP headers give their type without decoding pixels."""
    assert image_bytes(png(3, 2)) == "image/png"
    assert image_bytes(_jpeg(640, 480)) == "image/jpeg"
    assert image_bytes(_webp_vp8x(100, 10)) == "image/webp"
    with pytest.raises(InvalidParameterError):
        image_bytes(_webp_vp8x(5000, 10))


INVALID: list[tuple[Any, dict[str, Any], str]] = [
    (b"", {"purpose": "reference"}, "file"),
    (b"GIF89a....", {"purpose": "reference"}, "file"),
    (png(5000, 10), {"purpose": "reference"}, "file"),
    (_jpeg(100, 4097), {"purpose": "reference"}, "file"),
    (png() + b"\0" * (10 * 1024 * 1024), {"purpose": "reference"}, "file"),
    (png(), {"purpose": "thumbnail"}, "purpose"),
    (png(), {"purpose": "reference", "metadata": {"k": 1}}, "metadata"),
    (png(), {"purpose": "reference", "metadata": {str(i): "v" for i in range(51)}}, "metadata"),
    (png(), {"purpose": "reference", "idempotency_key": ""}, "idempotency_key"),
]


@pytest.mark.parametrize(("data", "kwargs", "param"), INVALID)
async def test_invalid_uploads_are_refused_before_sending(
    data: bytes, kwargs: dict[str, Any], param: str
) -> None:
    """Type, size, pixel and field limits are checked from the bytes, offline."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.files.create(data, **kwargs)
        assert info.value.param == param
        assert emu.requests == []
