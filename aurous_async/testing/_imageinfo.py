"""Image type and size from the real header bytes (PNG, JPEG, WebP), and a tiny PNG writer.

The emulator trusts neither a file name nor a declared ``Content-Type``: like the real
upload path (§10), it reads the container header. Only the header is checked; the
compressed data after it is not decoded.
"""

from __future__ import annotations

import struct
import zlib

import attrs

PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
MIME_TYPES = (JPEG, PNG, WEBP)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_VP8_START_CODE = b"\x9d\x01\x2a"
_VP8L_SIGNATURE = 0x2F


class ImageError(ValueError):
    """The bytes are not a PNG, JPEG or WebP image with a readable header."""


@attrs.frozen
class ImageInfo:
    """What a header says: the MIME type and the pixel size."""

    mime_type: str
    width: int
    height: int


def inspect_image(data: bytes) -> ImageInfo:
    """Return the type and size of ``data``; raise ``ImageError`` for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        info = _png(data)
    elif data.startswith(b"\xff\xd8"):
        info = _jpeg(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        info = _webp(data)
    else:
        raise ImageError("unrecognised file signature")
    if info.width < 1 or info.height < 1:
        raise ImageError("the image header declares an empty picture")
    return info


def _png(data: bytes) -> ImageInfo:
    if len(data) < 33:
        raise ImageError("truncated PNG header")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ImageError("a PNG must start with its IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    return ImageInfo(PNG, width, height)


def _jpeg(data: bytes) -> ImageInfo:
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG marker sequence")
        while pos < end and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):
            raise ImageError("JPEG has no frame header before its scan")
        if pos + 2 > end:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ImageError("corrupt JPEG segment length")
        if marker in _JPEG_SOF:
            if length < 7 or pos + 7 > end:
                break
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return ImageInfo(JPEG, width, height)
        pos += length
    raise ImageError("truncated JPEG header")


def _webp(data: bytes) -> ImageInfo:
    if len(data) < 30:
        raise ImageError("truncated WebP header")
    chunk = data[12:16]
    body = data[20:]
    if chunk == b"VP8 ":
        # 3-byte frame tag (bit 0 clear on a key frame), start code, 14-bit sizes.
        if body[0] & 1 or body[3:6] != _VP8_START_CODE:
            raise ImageError("WebP VP8 data does not start with a key frame")
        width, height = struct.unpack("<HH", body[6:10])
        return ImageInfo(WEBP, width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        if body[0] != _VP8L_SIGNATURE:
            raise ImageError("WebP VP8L data has a bad signature")
        (bits,) = struct.unpack("<I", body[1:5])
        return ImageInfo(WEBP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return ImageInfo(WEBP, width, height)
    raise ImageError("unknown WebP chunk")


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, fully decodable PNG of one solid colour (synthesized character refs)."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
