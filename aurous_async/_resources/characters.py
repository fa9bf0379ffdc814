"""``client.characters``: reusable characters, their uploads and refs (contract §11)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .. import _validation as check
from .._errors import InvalidParameterError
from .._requester import Call, Requester, new_idempotency_key
from ..models import (
    Character,
    CharacterAttributes,
    CharacterAttributesDict,
    DeletedCharacter,
    UploadClassification,
    UploadTicket,
)
from ._base import AsyncPager, Page, Resource, body, page_from, params, path_id
from ._inputs import read_input

__all__ = ["CharacterRefs", "CharacterUploads", "Characters"]

#: The attribute values the API documents: free strings, and an integer age.
AttributeValue = str | int
Attributes = CharacterAttributes | CharacterAttributesDict | Mapping[str, AttributeValue]


def _attributes(value: Attributes | None) -> dict[str, object] | None:
    return check.character_attributes(value)


class CharacterUploads(Resource):
    """The upload flow's first steps: a signed PUT URL per image, optional pose detection."""

    async def init(
        self,
        *,
        filename: str,
        content_type: str,
        extension: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> UploadTicket:
        """Mint a signed upload URL for one reference image (``POST .../uploads/init``).

        Args:
            filename: 1-120 characters.
            content_type: ``image/jpeg``, ``image/png`` or ``image/webp``.
            extension: ``jpeg``, ``jpg``, ``png`` or ``webp``, matching ``content_type``;
                taken from ``filename`` (or ``content_type``) when omitted.
        """
        extension = check.upload_init(
            filename=filename, content_type=content_type, extension=extension
        )
        call = Call(
            method="POST",
            path="/v1/characters/uploads/init",
            route="/v1/characters/uploads/init",
            json={"filename": filename, "extension": extension, "content_type": content_type},
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, UploadTicket)

    async def put(
        self,
        ticket: UploadTicket,
        data: bytes,
        *,
        timeout: float | None = None,
    ) -> None:
        """PUT the image bytes to the ticket's signed URL (no API key, unmetered)."""
        call = Call(
            method="PUT",
            path=ticket.upload_url,
            route="PUT {upload_url}",
            content=data,
            headers=dict(ticket.upload_headers or {}),
            idempotent=True,
            authenticated=False,
            metered=False,
            expect_json=False,
            timeout=timeout,
        )
        await self._send(call)

    async def classify(
        self, upload_id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> UploadClassification:
        """Detect the pose of an uploaded image (``POST .../uploads/classify``)."""
        call = Call(
            method="POST",
            path="/v1/characters/uploads/classify",
            route="/v1/characters/uploads/classify",
            json={"upload_id": check.string(upload_id, "upload_id")},
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, UploadClassification)


class CharacterRefs(Resource):
    """A character's reference renders."""

    async def regenerate(
        self,
        character_id: str,
        *,
        pose: str,
        prompt_override: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Character:
        """Re-synthesize one pose (``POST /v1/characters/{id}/refs/regenerate``).

        Costs one generation; retried safely under one ``Idempotency-Key``.

        Args:
            pose: ``portrait``, ``front``, ``side``, ``back`` or ``other``.
        """
        check.pose(pose)
        key = check.idempotency_key(idempotency_key) or new_idempotency_key()
        call = Call(
            method="POST",
            path=f"/v1/characters/{path_id(character_id, 'character_id')}/refs/regenerate",
            route="/v1/characters/{id}/refs/regenerate",
            json=body(pose=pose, prompt_override=prompt_override),
            idempotency_key=key,
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)


class Characters(Resource):
    """Create, fetch, list, update, delete and re-synthesize characters.

    Attributes:
        uploads: the upload flow (``init``, ``put``, ``classify``).
        refs: per-pose reference renders (``regenerate``).
    """

    def __init__(self, requester: Requester) -> None:
        super().__init__(requester)
        self.uploads = CharacterUploads(requester)
        self.refs = CharacterRefs(requester)

    async def upload(
        self,
        file: str | os.PathLike[str] | bytes,
        *,
        filename: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> UploadTicket:
        """Upload one reference image in one call: ``uploads.init`` then the signed PUT.

        The content type is detected from the bytes (JPEG, PNG or WebP). Pass the
        returned ticket's ``upload_id`` to ``create(upload_ids=...)``.
        """
        data, name = await read_input(file, filename)
        content_type = check.image_bytes(data)
        if name is None:
            name = "upload." + content_type.rsplit("/", 1)[1]
        ticket = await self.uploads.init(
            filename=name, content_type=content_type, timeout=timeout, api_version=api_version
        )
        await self.uploads.put(ticket, data, timeout=timeout)
        return ticket

    async def create(
        self,
        *,
        name: str,
        upload_ids: Sequence[str] | None = None,
        generate: bool | None = None,
        attributes: Attributes | None = None,
        client_reference_id: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Character:
        """Create a character (``POST /v1/characters``), by exactly one of two flows.

        Upload flow: ``upload_ids`` (1-6 uploads), ready at once. Synthesize flow:
        ``generate=True`` with ``attributes``; starts ``synthesizing`` and costs credits.

        Args:
            attributes: ``gender``, ``age``, ``ethnicity``, ``hair_color``,
                ``hair_style``, ``eye_color``, ``body_type``, ``additional_details``.
            client_reference_id: up to 256 characters, echoed on the character and its
                webhooks.

        A create is not retried after an ambiguous failure (the API documents no
        idempotency key for it); such a failure raises ``OutcomeUnknownError``.
        """
        wire_attributes = _attributes(attributes)
        check.character_create(
            name=name,
            upload_ids=upload_ids,
            generate=generate,
            attributes=wire_attributes,
            client_reference_id=client_reference_id,
        )
        call = Call(
            method="POST",
            path="/v1/characters",
            route="/v1/characters",
            json=body(
                name=name,
                generate=generate,
                upload_ids=None if upload_ids is None else list(upload_ids),
                attributes=wire_attributes,
                client_reference_id=client_reference_id,
            ),
            creates=True,
            synthesize=bool(generate),
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Character:
        """Fetch one character (``GET /v1/characters/{id}``); deleted ones give 404."""
        call = Call(
            method="GET",
            path=f"/v1/characters/{path_id(id)}",
            route="/v1/characters/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> AsyncPager[Character]:
        """Iterate the team's characters, newest first (``GET /v1/characters``)."""
        check.page_limit(limit)

        async def fetch(cursor: str | None) -> Page[Character]:
            call = Call(
                method="GET",
                path="/v1/characters",
                route="/v1/characters",
                params=params(limit=limit, starting_after=cursor),
                idempotent=True,
                timeout=timeout,
                api_version=api_version,
            )
            return page_from(await self._send(call), Character)

        return AsyncPager(fetch, first_cursor=starting_after)

    async def update(
        self,
        id: str,
        *,
        name: str | None = None,
        attributes: Attributes | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Character:
        """Rename a character or replace its attributes (``PATCH /v1/characters/{id}``).

        ``attributes`` replaces the stored object as a whole; it is not merged.
        """
        if name is None and attributes is None:
            raise InvalidParameterError("name: give name and/or attributes", param="name")
        wire_attributes = _attributes(attributes)
        check.character_update(name=name, attributes=wire_attributes)
        call = Call(
            method="PATCH",
            path=f"/v1/characters/{path_id(id)}",
            route="/v1/characters/{id}",
            json=body(name=name, attributes=wire_attributes),
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)

    async def delete(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> DeletedCharacter:
        """Delete a character (``DELETE /v1/characters/{id}``); a second delete gives 404."""
        call = Call(
            method="DELETE",
            path=f"/v1/characters/{path_id(id)}",
            route="/v1/characters/{id}",
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, DeletedCharacter)

    async def save(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Character:
        """Approve a ``reviewing`` character (``POST .../save``); a no-op when ``ready``."""
        call = Call(
            method="POST",
            path=f"/v1/characters/{path_id(id)}/save",
            route="/v1/characters/{id}/save",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)

    async def resynthesize(
        self,
        id: str,
        *,
        force_all: bool | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Character:
        """Re-synthesize every pose (``POST /v1/characters/{id}/resynthesize``).

        Costs four generations; retried safely under one ``Idempotency-Key``.
        """
        key = check.idempotency_key(idempotency_key) or new_idempotency_key()
        call = Call(
            method="POST",
            path=f"/v1/characters/{path_id(id)}/resynthesize",
            route="/v1/characters/{id}/resynthesize",
            json=body(force_all=force_all),
            idempotency_key=key,
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Character)
