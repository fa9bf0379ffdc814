"""Support for the files and characters emulator tests.

Tiny real image headers (no imaging library needed) and golden-shape checks.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def assert_golden_shape(actual: dict[str, object], fixture: str) -> None:
    """Every field of the contract's example is present with the same JSON type.

    Nulls match anything (the example may show a value the emulator has not set, and the
    other way round); the emulator may add fields. Skips when the fixture is not there.
    """
    path = FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"golden fixture {fixture} not written yet")
    expected = json.loads(path.read_text())
    assert isinstance(expected, dict)
    missing = sorted(set(expected) - set(actual))
    assert not missing, f"{fixture}: missing fields {missing}"
    for key, value in expected.items():
        if value is None or actual[key] is None:
            continue
        assert _json_kind(actual[key]) == _json_kind(value), f"{fixture}: {key}"
        item, sample = actual[key], value
        if not (isinstance(item, list) and isinstance(sample, list) and item and sample):
            continue
        if isinstance(sample[0], dict) and isinstance(item[0], dict):
            assert set(sample[0]) <= set(item[0]), f"{fixture}: {key}[0]"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(width: int = 2, height: int = 3, rgb: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    """A complete, decodable RGB PNG."""
    raw = (b"\x00" + bytes(rgb) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_header(width: int, height: int) -> bytes:
    """Just the PNG signature and IHDR: enough to forge a huge declared size cheaply."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(width: int = 4, height: int = 3, *, sof: int = 0xC0, exif: bool = False) -> bytes:
    """A JPEG whose header is well formed: SOI, APP0 (JFIF), [APP1 Exif], SOFn, SOS, EOI."""
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    app1 = _segment(0xE1, b"Exif\x00\x00" + b"\x00" * 20) if exif else b""
    frame = _segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    scan = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34\x56"
    return b"\xff\xd8" + app0 + app1 + frame + scan + b"\xff\xd9"


def _riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    if len(payload) % 2:
        body += b"\x00"  # RIFF chunks are padded to an even size
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossless(width: int = 1, height: int = 1) -> bytes:
    """A VP8L (lossless) WebP; at 1x1 it is byte for byte the smallest real lossless file."""
    bits = (width - 1) | ((height - 1) << 14) | (1 << 28)
    return _riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x07\x10\x11\x11\x88\x88\xfe\x07")


def webp_lossy(width: int = 5, height: int = 7, *, key_frame: bool = True) -> bytes:
    """A VP8 (lossy) WebP header: frame tag, start code, 14-bit sizes."""
    tag = b"\x50\x02\x00" if key_frame else b"\x51\x02\x00"
    frame = tag + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 12
    return _riff(b"VP8 ", frame)


def webp_extended(width: int = 640, height: int = 480) -> bytes:
    """A VP8X (extended) WebP header with the canvas size."""
    payload = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    payload += (height - 1).to_bytes(3, "little")
    return _riff(b"VP8X", payload) + b"\x00" * 8
