"""``client.files``: reference images for generations (contract §10)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from .. import _validation as check
from .._requester import Call, new_idempotency_key
from .._transport import Multipart, Part
from ..models import DeletedFile, File
from ._base import Resource, path_id
from ._inputs import read_input

__all__ = ["Files"]


class Files(Resource):
    """Upload, fetch and purge reference files (kept 24 h at most)."""

    async def create(
        self,
        file: str | os.PathLike[str] | bytes,
        *,
        purpose: str,
        metadata: Mapping[str, str] | None = None,
        filename: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> File:
        """Upload one image (``POST /v1/files``, multipart).

        The image must be PNG, JPEG or WebP, at most 10 MB and 4096 px per side; this is
        checked from the bytes before anything is sent.

        Args:
            file: a path, or the image bytes.
            purpose: ``reference``, ``first_frame`` or ``last_frame``.
            metadata: echoed back on the file object.
            filename: the name sent with the bytes (default: the path's name).
            idempotency_key: 1-256 characters; a fresh UUID4 by default.
        """
        check.file_purpose(purpose)
        if metadata is not None:
            check.metadata(metadata)
        key = check.idempotency_key(idempotency_key) or new_idempotency_key()
        data, name = await read_input(file, filename)
        mime = check.image_bytes(data)
        parts = [
            Part("file", data, filename=name or "upload", content_type=mime),
            Part("purpose", purpose),
        ]
        if metadata is not None:
            parts.append(Part("metadata", json.dumps(dict(metadata), separators=(",", ":"))))
        call = Call(
            method="POST",
            path="/v1/files",
            route="/v1/files",
            content=Multipart(tuple(parts)),
            idempotency_key=key,
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, File)

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> File:
        """Fetch a file's metadata with a freshly signed 1 h URL (``GET /v1/files/{id}``)."""
        call = Call(
            method="GET",
            path=f"/v1/files/{path_id(id)}",
            route="/v1/files/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, File)

    async def delete(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> DeletedFile:
        """Purge a file now (``DELETE /v1/files/{id}``); succeeds for missing files too."""
        call = Call(
            method="DELETE",
            path=f"/v1/files/{path_id(id)}",
            route="/v1/files/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, DeletedFile)
