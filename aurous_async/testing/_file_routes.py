"""``/v1/files``: upload (multipart), get, delete; plus the signed byte route (§10).

``GET /storage/files/{file_id}?token=…`` serves a file's bytes. It stands in for the real
API's private bucket URL, needs no API key, and is unmetered: an emulator detail.
"""

from __future__ import annotations

from typing import Any

import attrs
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ._errors import ApiError, bad_format, missing, not_found, out_of_range
from ._files import MAX_FILE_BYTES, PURPOSES, check_image
from ._idempotency import canonical_json
from ._json_input import JsonInputError
from ._json_input import parse as parse_json
from ._ranges import byte_reply
from ._routing import Ctx, Reply, Route
from ._schema import BOOLEAN, STRING, const, obj

MAX_FIELD_BYTES = 64 * 1024
METADATA_MAX_KEYS = 50
METADATA_MAX_VALUE = 500
_CHUNK = 64 * 1024


@attrs.frozen
class UploadForm:
    """The parsed multipart body; the file part is only validated by the handler."""

    purpose: str
    metadata: dict[str, object]
    data: bytes
    oversized: bool


# aiohttp >= 3.13 warns about plain string keys in request storage.
_RequestKey = getattr(web, "RequestKey", None)
_FORM_KEY: Any = (
    _RequestKey("aurous.files.form", UploadForm) if _RequestKey else "aurous.files.form"
)


async def _read_part(part: BodyPartReader, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of a part, and whether it was longer (the rest is drained)."""
    buffer = bytearray()
    oversized = False
    while True:
        chunk = await part.read_chunk(_CHUNK)
        if not chunk:
            return bytes(buffer), oversized
        if oversized or len(buffer) + len(chunk) > limit:
            oversized = True
            continue
        buffer += chunk


async def _parse_form(ctx: Ctx) -> UploadForm:
    request = ctx.request
    if request.content_type != "multipart/form-data":
        raise bad_format(None, "POST /v1/files takes multipart/form-data.")
    fields: dict[str, bytes] = {}
    oversized = False
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                raise bad_format(None, "Nested or unnamed multipart parts are not accepted.")
            name = part.name
            if name not in ("file", "purpose", "metadata"):
                raise bad_format(name, f"Unknown form field '{name}'.")
            if name in fields:
                raise bad_format(name, f"Form field '{name}' was sent more than once.")
            limit = MAX_FILE_BYTES if name == "file" else MAX_FIELD_BYTES
            data, too_long = await _read_part(part, limit)
            if too_long and name != "file":
                raise out_of_range(name, f"'{name}' is too long.")
            oversized = oversized or too_long
            fields[name] = data
    except (
        ValueError,
        AssertionError,
        RuntimeError,
        HttpProcessingError,  # a part's headers do not parse (found by the fuzz suite)
        web.HTTPException,
    ) as exc:
        raise bad_format(None, f"Malformed multipart body: {exc}") from None
    if "file" not in fields:
        raise missing("file")
    if "purpose" not in fields:
        raise missing("purpose")
    purpose = fields["purpose"].decode("utf-8", "replace").strip()
    if purpose not in PURPOSES:
        raise bad_format("purpose", f"'purpose' must be one of: {', '.join(PURPOSES)}.")
    metadata = _metadata(fields.get("metadata"))
    return UploadForm(purpose, metadata, fields["file"], oversized)


def _metadata(raw: bytes | None) -> dict[str, object]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = parse_json(raw)
    except JsonInputError:
        raise bad_format("metadata", "'metadata' must be a JSON-encoded object.") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_format("metadata", "'metadata' must be a JSON-encoded object.")
    if len(value) > METADATA_MAX_KEYS:
        raise out_of_range("metadata", f"'metadata' holds at most {METADATA_MAX_KEYS} keys.")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad_format("metadata", f"metadata['{key}'] must be a string.")
        if len(item) > METADATA_MAX_VALUE:
            raise out_of_range(
                "metadata", f"metadata['{key}'] must be at most {METADATA_MAX_VALUE} characters."
            )
    return value


async def upload_form(ctx: Ctx) -> UploadForm:
    """The request's form, parsed once (the idempotency fingerprint reads it first)."""
    cached = ctx.request.get(_FORM_KEY)
    if isinstance(cached, UploadForm):
        return cached
    form = await _parse_form(ctx)
    ctx.request[_FORM_KEY] = form
    return form


async def fingerprint(ctx: Ctx) -> str:
    """Same key + same purpose + same metadata replays (§7, §10); the bytes do not count."""
    form = await upload_form(ctx)
    return canonical_json({"purpose": form.purpose, "metadata": form.metadata})


async def create_file(ctx: Ctx) -> Reply:
    """Upload a reference image."""
    form = await upload_form(ctx)
    info = check_image(form.data, form.oversized, "file")
    files = ctx.state.files
    stored = files.create(ctx.team.id, form.purpose, info, form.data, form.metadata)
    return Reply(status=201, body=files.to_json(stored))


async def get_file(ctx: Ctx) -> Reply:
    """Get a file, with a freshly minted 1 h URL."""
    files = ctx.state.files
    return Reply(body=files.to_json(files.get(ctx.team.id, ctx.match["file_id"])))


DELETED_SCHEMA = obj({"deleted": BOOLEAN, "id": STRING, "object": const("file")})


async def delete_file(ctx: Ctx) -> Reply:
    """Purge a file now; always 200."""
    file_id = ctx.match["file_id"]
    ctx.state.files.delete(ctx.team.id, file_id)
    return Reply(body={"deleted": True, "id": file_id, "object": "file"})


async def file_content(ctx: Ctx) -> Reply:
    """A file's bytes behind its signed URL (emulator detail)."""
    found = ctx.state.files.content(ctx.match["file_id"], ctx.query.get("token"))
    if found == "expired":
        raise ApiError(
            410,
            "output_expired",
            "This signed URL has expired; GET /v1/files/{id} mints a fresh one.",
        )
    if isinstance(found, str):
        raise not_found("file")
    return byte_reply(ctx, found.data, found.info.mime_type)


ROUTES: list[Route] = [
    Route(
        "POST",
        "/v1/files",
        create_file,
        bucket="files",
        scope="write",
        idempotent=True,
        fingerprint=fingerprint,
        success=201,
        summary="Upload a reference file (multipart/form-data)",
    ),
    Route("GET", "/v1/files/{file_id}", get_file, summary="Get a file with a fresh 1 h URL"),
    Route(
        "DELETE",
        "/v1/files/{file_id}",
        delete_file,
        bucket="default",
        scope="write",
        summary="Purge a file now (always 200)",
    ),
    Route(
        "GET",
        "/storage/files/{file_id}",
        file_content,
        bucket=None,
        auth=False,
        summary="A file's bytes (signed URL; emulator detail)",
    ),
]
