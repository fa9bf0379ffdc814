"""Image type and size from real header bytes, and the emulator's PNG writer."""

from __future__ import annotations

import struct
import zlib

import pytest

from aurous_async.testing._imageinfo import ImageError, ImageInfo, inspect_image, make_png

from ._cf_support import jpeg, png, png_header, webp_extended, webp_lossless, webp_lossy


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(2, 3), ImageInfo("image/png", 2, 3)),
        (png_header(4096, 1), ImageInfo("image/png", 4096, 1)),
        (jpeg(4, 3), ImageInfo("image/jpeg", 4, 3)),
        (jpeg(640, 480, sof=0xC2), ImageInfo("image/jpeg", 640, 480)),
        (jpeg(17, 9, sof=0xC1, exif=True), ImageInfo("image/jpeg", 17, 9)),
        (webp_lossless(), ImageInfo("image/webp", 1, 1)),
        (webp_lossless(16384, 300), ImageInfo("image/webp", 16384, 300)),
        (webp_lossy(5, 7), ImageInfo("image/webp", 5, 7)),
        (webp_extended(5000, 20), ImageInfo("image/webp", 5000, 20)),
    ],
)
def test_reads_type_and_size_from_the_header(data: bytes, expected: ImageInfo) -> None:
    """PNG IHDR, JPEG SOF markers (after APPn segments) and the three WebP chunk kinds."""
    assert inspect_image(data) == expected


def test_jpeg_fill_bytes_and_restart_markers_are_skipped() -> None:
    """Padding 0xFF bytes and standalone markers before the frame header are tolerated."""
    data = jpeg(8, 6)
    patched = data[:2] + b"\xff\xff\xd0" + data[2:]
    assert inspect_image(patched) == ImageInfo("image/jpeg", 8, 6)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"BM" + b"\x00" * 60,
        png(2, 2)[:20],
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIDAT" + b"\x00" * 20,
        png_header(0, 5),
        b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\xff\xd9",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"\xff\xd8\x00\x00\x00",
        webp_lossy(key_frame=False),
        webp_lossless()[:20] + b"\x2e" + webp_lossless()[21:],
        webp_lossless().replace(b"VP8L", b"ALPH"),
        b"RIFF\x04\x00\x00\x00WEBP",
        b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00" * 20,
    ],
    ids=[
        "empty",
        "gif",
        "bmp",
        "truncated-png",
        "png-without-ihdr",
        "png-zero-width",
        "jpeg-scan-before-frame",
        "jpeg-truncated",
        "jpeg-bad-marker",
        "webp-vp8-not-key-frame",
        "webp-vp8l-bad-signature",
        "webp-unknown-chunk",
        "webp-truncated",
        "riff-wave",
    ],
)
def test_anything_else_is_rejected(data: bytes) -> None:
    """Other formats, truncated headers and corrupt markers raise ImageError."""
    with pytest.raises(ImageError):
        inspect_image(data)


def test_make_png_writes_a_decodable_png() -> None:
    """The synthesized-ref PNG has valid CRCs and decompresses to the declared pixels."""
    data = make_png(3, 2, (1, 2, 3))
    assert inspect_image(data) == ImageInfo("image/png", 3, 2)
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks[kind] = payload
        pos += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    assert zlib.decompress(chunks[b"IDAT"]) == (b"\x00" + b"\x01\x02\x03" * 3) * 2
