"""Uploaded reference files (contract §10): stored bytes, signed 1 h URLs, a hard 24 h TTL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._errors import bad_format, not_found, out_of_range
from ._ids import new_id
from ._imageinfo import ImageError, ImageInfo, inspect_image
from ._schema import INTEGER, STRING, STRING_MAP, TIMESTAMP, const, obj, one_of
from ._serialize import iso
from ._signing import check_token, make_token

if TYPE_CHECKING:
    from ._state import EmulatorState

FILE_TTL = 24 * 3600.0
URL_TTL = 3600.0
PURPOSES = ("reference", "first_frame", "last_frame")
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SIDE_PX = 4096


def check_image(data: bytes, oversized: bool, param: str) -> ImageInfo:
    """The documented limits (§10): PNG/JPEG/WebP by header, 10 MB, 4096 px per side."""
    if oversized or len(data) > MAX_FILE_BYTES:
        raise out_of_range(param, f"The file is larger than {MAX_FILE_BYTES} bytes (10 MB).")
    if not data:
        raise bad_format(param, "The file is empty.")
    try:
        info = inspect_image(data)
    except ImageError as exc:
        raise bad_format(param, f"The file must be a PNG, JPEG or WebP image: {exc}.") from None
    if info.width > MAX_SIDE_PX or info.height > MAX_SIDE_PX:
        raise out_of_range(
            param,
            f"The image is {info.width}x{info.height} px; each side must be at most "
            f"{MAX_SIDE_PX} px.",
        )
    return info


@attrs.define(eq=False)
class StoredFile:
    id: str
    team_id: str
    purpose: str
    info: ImageInfo
    data: bytes = attrs.field(repr=False)
    metadata: dict[str, object]
    created_at: float

    @property
    def expires_at(self) -> float:
        return self.created_at + FILE_TTL


def content_path(file_id: str) -> str:
    """Where a file's bytes are served (an emulator detail: the real bucket is private)."""
    return f"/storage/files/{file_id}"


class FileStore:
    """The files of every team, purged at ``expires_at`` by the emulator clock."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._files: dict[str, StoredFile] = {}

    def create(
        self,
        team_id: str,
        purpose: str,
        info: ImageInfo,
        data: bytes,
        metadata: dict[str, object],
    ) -> StoredFile:
        now = self._state.now()
        stored = StoredFile(new_id("file", now), team_id, purpose, info, data, metadata, now)
        self._files[stored.id] = stored
        self._state.scheduler.at(stored.expires_at, lambda _due: self._purge(stored.id))
        return stored

    def _purge(self, file_id: str) -> None:
        self._files.pop(file_id, None)

    def _live(self, file_id: str) -> StoredFile | None:
        stored = self._files.get(file_id)
        if stored is None or self._state.now() >= stored.expires_at:
            return None
        return stored

    def get(self, team_id: str, file_id: str, param: str = "file_id") -> StoredFile:
        """The team's live file; 404 ``resource_not_found`` for anything else."""
        stored = self._live(file_id)
        if stored is None or stored.team_id != team_id:
            raise not_found("file", param)
        return stored

    def resolve(self, team_id: str, file_id: str, param: str) -> None:
        """Check that ``file_id`` is a live file of the team (used by generations).

        Raises:
            ApiError: 404 ``resource_not_found`` naming ``param`` when the file is
                unknown, another team's, deleted or past its 24 h TTL.
        """
        self.get(team_id, file_id, param)

    def delete(self, team_id: str, file_id: str) -> None:
        """Purge now; unknown, already deleted and other teams' ids are a silent no-op."""
        stored = self._files.get(file_id)
        if stored is not None and stored.team_id == team_id:
            del self._files[file_id]

    def content(self, file_id: str, token: str | None) -> StoredFile | str:
        """The file behind a signed URL, or why not: ``"invalid"``, ``"expired"``, ``"gone"``."""
        verdict = check_token(content_path(file_id), token, self._state.now())
        if verdict != "ok":
            return verdict
        stored = self._live(file_id)
        return "gone" if stored is None else stored

    SCHEMA = obj(
        {
            "id": STRING,
            "object": const("file"),
            "purpose": one_of(*PURPOSES),
            "mime_type": STRING,
            "size_bytes": INTEGER,
            "width_px": INTEGER,
            "height_px": INTEGER,
            "url": STRING,
            "expires_at": TIMESTAMP,
            "created_at": TIMESTAMP,
            "metadata": STRING_MAP,
        }
    )

    def to_json(self, stored: StoredFile) -> dict[str, object]:
        """The file object of §10, with a freshly signed 1 h URL."""
        now = self._state.now()
        path = content_path(stored.id)
        url = f"{self._state.base_url}{path}?token={make_token(path, now + URL_TTL)}"
        return {
            "id": stored.id,
            "object": "file",
            "purpose": stored.purpose,
            "mime_type": stored.info.mime_type,
            "size_bytes": len(stored.data),
            "width_px": stored.info.width,
            "height_px": stored.info.height,
            "url": url,
            "expires_at": iso(stored.expires_at),
            "created_at": iso(stored.created_at),
            "metadata": stored.metadata,
        }
