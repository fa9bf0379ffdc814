"""Byte replies that honour ``Range`` (RFC 9110 §14), for every route that serves bytes.

The contract documents ``Range`` on the video output only; the emulator serves every
byte route (image and video outputs, file and ref content) the way S3 and CDNs do:
``Accept-Ranges: bytes`` on a 200, one ``bytes=N-M`` / ``N-`` / ``-S`` range as 206 with
``Content-Range``, a range past the end as 416 with ``Content-Range: bytes */<size>``.
Several ranges, or another unit, get the whole body (200), as RFC 9110 allows; a
``bytes=`` value that does not parse is a 400 ``invalid_format``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import ApiError, bad_format
from ._routing import Ctx, Reply

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_reply(
    ctx: Ctx, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """``data`` whole (200) or the one range the request's ``Range`` header asks for."""
    out = {"Accept-Ranges": "bytes", **(headers or {})}
    header = ctx.request.headers.get("Range")
    if header is None:
        return Reply(data=data, content_type=content_type, headers=out)
    total = len(data)
    span = parse_range(header.strip(), total)
    if span is None:
        return Reply(data=data, content_type=content_type, headers=out)
    start, end = span
    if start >= total or start > end:
        raise ApiError(
            416,
            "invalid_format",
            f"Range {header!r} is not satisfiable; the body is {total} bytes.",
            param="Range",
            type="invalid_request",
            headers={"Content-Range": f"bytes */{total}"},
        )
    end = min(end, total - 1)
    out["Content-Range"] = f"bytes {start}-{end}/{total}"
    return Reply(status=206, data=data[start : end + 1], content_type=content_type, headers=out)


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as inclusive ``(start, end)``; ``None`` to ignore the header."""
    match = _RANGE.match(header)
    if match is None and (not header.startswith("bytes=") or "," in header):
        return None  # another unit, or several ranges: the whole body
    if match is None or match.groups() == ("", ""):
        raise bad_format("Range", f"Malformed Range header {header!r}.")
    first, last = match.groups()
    if not first:
        suffix = int(last)
        if suffix == 0:
            return total, total
        return max(0, total - suffix), total - 1
    return int(first), int(last) if last else total - 1
