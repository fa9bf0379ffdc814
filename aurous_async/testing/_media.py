"""Deterministic output bytes: a real PNG per image and a small MP4 per video.

The PNG declares the generation's exact width and height and decodes with any PNG
reader. It stays cheap at 4096 x 4096 because it is a grid of flat colour cells (indexed
colour, 8 bits): every row of a band is the same, so one deflate segment is compressed
once and repeated. Each segment ends with a full flush, so it never refers back into the
previous copy and the repetition is a valid zlib stream.

The MP4 is an ISO BMFF file (ftyp, moov with one H.264 video track whose SPS declares the
frame size, mdat with placeholder samples): enough for ``file`` and container probes to
report a video of the right size and duration; the frames themselves do not decode.
"""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import zlib

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GRID = 8
_SEGMENT_ROWS = 64
#: An empty final deflate block (fixed Huffman, end-of-block only).
_FINAL_BLOCK = b"\x03\x00"


def _digest_stream(seed: str, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}|{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _repeated_zlib(pieces: list[tuple[bytes, int]]) -> bytes:
    """A zlib stream of each ``raw`` repeated ``times``, compressing each raw once."""
    out = [b"\x78\x01"]
    adler = 1
    for raw, times in pieces:
        if times <= 0:
            continue
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        segment = compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)
        out.append(segment * times)
        for _ in range(times):
            adler = zlib.adler32(raw, adler)
    out.append(_FINAL_BLOCK)
    out.append(struct.pack(">I", adler))
    return b"".join(out)


def _cells(length: int, parts: int) -> list[int]:
    base, extra = divmod(length, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@functools.lru_cache(maxsize=32)
def png(width: int, height: int, prompt: str, seed: int) -> bytes:
    """A valid ``width`` x ``height`` PNG whose colours derive from ``prompt`` and ``seed``."""
    noise = _digest_stream(f"png|{prompt}|{seed}", 16 * 3 + _GRID * _GRID)
    palette = noise[:48]
    picks = noise[48:]
    columns = _cells(width, _GRID)
    pieces: list[tuple[bytes, int]] = []
    for band, band_rows in enumerate(_cells(height, _GRID)):
        row = b"\x00" + b"".join(
            bytes([picks[band * _GRID + col] % 16]) * cell_width
            for col, cell_width in enumerate(columns)
        )
        full, rest = divmod(band_rows, _SEGMENT_ROWS)
        pieces.append((row * _SEGMENT_ROWS, full))
        pieces.append((row * rest, 1 if rest else 0))
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", palette),
            _chunk(b"tEXt", b"Software\x00aurous_async emulator"),
            _chunk(b"IDAT", _repeated_zlib(pieces)),
            _chunk(b"IEND", b""),
        )
    )


# -- MP4 ---------------------------------------------------------------------------------

_FPS = 24
_TIMESCALE = 12_000
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


class _Bits:
    """An MSB-first bit writer with Exp-Golomb codes (H.264 parameter sets)."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, count: int, value: int) -> None:
        self.bits.extend((value >> (count - 1 - i)) & 1 for i in range(count))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        # Emulation prevention: never let 00 00 0x (x <= 3) appear in a NAL payload.
        out = bytearray()
        zeros = 0
        for byte in raw:
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


def _sps(width: int, height: int) -> bytes:
    mbs_w, mbs_h = (width + 15) // 16, (height + 15) // 16
    bits = _Bits()
    bits.u(8, 66)  # profile_idc: Baseline
    bits.u(8, 0xC0)  # constraint_set0/1 flags
    bits.u(8, 40)  # level_idc 4.0
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type
    bits.ue(1)  # max_num_ref_frames
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(mbs_w - 1)
    bits.ue(mbs_h - 1)
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    crop_right, crop_bottom = (mbs_w * 16 - width) // 2, (mbs_h * 16 - height) // 2
    if crop_right or crop_bottom:
        bits.u(1, 1)
        for value in (0, crop_right, 0, crop_bottom):
            bits.ue(value)
    else:
        bits.u(1, 0)
    bits.u(1, 0)  # vui_parameters_present_flag
    return b"\x67" + bits.rbsp()


def _pps() -> bytes:
    bits = _Bits()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # entropy_coding_mode_flag (CAVLC)
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.ue(0)  # pic_init_qp_minus26 (se(0) == ue(0))
    bits.ue(0)  # pic_init_qs_minus26
    bits.ue(0)  # chroma_qp_index_offset
    bits.u(1, 1)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    return b"\x68" + bits.rbsp()


def _avc1(width: int, height: int) -> bytes:
    sps, pps = _sps(width, height), _pps()
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
        struct.pack(">H", len(sps)),
        sps,
        b"\x01",
        struct.pack(">H", len(pps)),
        pps,
    )
    entry = b"".join(
        (
            b"\x00" * 6,
            struct.pack(">H", 1),  # data_reference_index
            b"\x00" * 16,
            struct.pack(">HH", width, height),
            struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
            struct.pack(">I", 0),
            struct.pack(">H", 1),  # frame_count
            b"\x00" * 32,  # compressorname
            struct.pack(">Hh", 0x0018, -1),
            avcc,
        )
    )
    return _box(b"avc1", entry)


@functools.lru_cache(maxsize=16)
def mp4(width: int, height: int, seconds: int, seed: str) -> bytes:
    """A small MP4 declaring a ``width`` x ``height`` H.264 track of ``seconds`` seconds."""
    frames = _FPS * seconds
    sample_size = 96 + (width * height) // 4096
    noise = _digest_stream(f"mp4|{seed}", sample_size)
    samples = []
    for index in range(frames):
        nal_type = b"\x65" if index % _FPS == 0 else b"\x41"
        payload = nal_type + bytes([index & 0xFF]) + noise[: sample_size - 6]
        samples.append(struct.pack(">I", len(payload)) + payload)
    mdat_payload = b"".join(samples)
    duration = seconds * _TIMESCALE
    delta = _TIMESCALE // _FPS

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(width, height)),
            _full_box(b"stts", 0, 0, struct.pack(">III", 1, frames, delta)),
            _full_box(
                b"stss",
                0,
                0,
                struct.pack(">I", seconds),
                *(struct.pack(">I", 1 + i * _FPS) for i in range(seconds)),
            ),
            _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),
            _full_box(
                b"stsz",
                0,
                0,
                struct.pack(">II", 0, frames),
                *(struct.pack(">I", len(sample)) for sample in samples),
            ),
            _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full_box(b"vmhd", 0, 1, struct.pack(">HHHH", 0, 0, 0, 0)),
            _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0)),
            _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00"),
            minf,
        )
        tkhd = _full_box(
            b"tkhd",
            0,
            3,
            struct.pack(">IIII", 0, 0, 1, 0),
            struct.pack(">I", duration),
            b"\x00" * 8,
            struct.pack(">hhhH", 0, 0, 0, 0),
            _MATRIX,
            struct.pack(">II", width << 16, height << 16),
        )
        mvhd = _full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">IIII", 0, 0, _TIMESCALE, duration),
            struct.pack(">IH", 0x00010000, 0x0100),
            b"\x00" * 10,
            _MATRIX,
            b"\x00" * 24,
            struct.pack(">I", 2),
        )
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    head = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(head) + _box(b"mdat", mdat_payload)


@functools.lru_cache(maxsize=2)
def padded(data: bytes, size: int | None, seed: str) -> bytes:
    """``data`` (an MP4) grown to at least ``size`` bytes by a trailing ``free`` box of
    random bytes drawn from ``seed`` (so every offset of a large body is distinct)."""
    missing = (size or 0) - len(data)
    if missing < 8:
        return data
    filler = random.Random(seed).randbytes(missing - 8)
    return data + struct.pack(">I", missing) + b"free" + filler
