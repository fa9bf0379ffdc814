"""``client.characters`` (uploads, refs, both create flows) end to end against the emulator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _sdk_helpers import emulated, png, settle

from aurous_async import (
    AsyncAurous,
    BadRequestError,
    Character,
    CharacterAttributes,
    CharacterStatus,
    DeletedCharacter,
    InsufficientCreditsError,
    InvalidParameterError,
    NotFoundError,
    Pose,
)

pytestmark = pytest.mark.anyio


async def test_upload_flow_create_read_update_delete() -> None:
    """Upload, classify, create ready, list, patch, delete: the whole upload flow."""
    async with emulated() as (emu, client):
        ticket = await client.characters.upload(png(), filename="front-portrait.png")
        assert ticket.upload_id.startswith("upl_")
        put = [r for r in emu.requests if r.method == "PUT"]
        assert len(put) == 1
        assert put[0].bucket is None
        pose = await client.characters.uploads.classify(ticket.upload_id)
        assert pose.pose == Pose.FRONT
        assert pose.confidence == 0.95
        char = await client.characters.create(
            name="Aurora",
            upload_ids=[ticket.upload_id],
            attributes=CharacterAttributes(gender="female", age=28),
            client_reference_id="crm-7",
        )
        assert isinstance(char, Character)
        assert char.status == CharacterStatus.READY
        assert [ref.pose for ref in char.refs] == ["front"]
        assert char.attributes == CharacterAttributes(gender="female", age=28)
        assert char.client_reference_id == "crm-7"
        assert emu.requests[-1].bucket == "characters_post"
        assert (await client.characters.get(char.id)).name == "Aurora"
        assert emu.requests[-1].bucket == "characters_get"
        listed = [c.id async for c in client.characters.list(limit=1)]
        assert listed == [char.id]
        renamed = await client.characters.update(
            char.id, name="Aurora II", attributes={"hair_color": "black"}
        )
        assert renamed.name == "Aurora II"
        assert renamed.attributes == CharacterAttributes(hair_color="black")
        deleted = await client.characters.delete(char.id)
        assert isinstance(deleted, DeletedCharacter)
        assert deleted.deleted is True
        with pytest.raises(NotFoundError):
            await client.characters.get(char.id)
        with pytest.raises(NotFoundError):
            await client.characters.delete(char.id)


async def test_step_by_step_upload_and_consumed_ticket() -> None:
    """``init`` + ``put`` work by hand; a consumed upload cannot be classified again."""
    async with emulated() as (_, client):
        ticket = await client.characters.uploads.init(filename="side.png", content_type="image/png")
        assert ticket.upload_headers == {"Content-Type": "image/png"}
        await client.characters.uploads.put(ticket, png())
        await client.characters.create(name="Side", upload_ids=[ticket.upload_id])
        with pytest.raises(BadRequestError) as info:
            await client.characters.uploads.classify(ticket.upload_id)
        assert info.value.code == "upload_invalid"


async def test_synthesize_flow_regenerate_resynthesize_and_save() -> None:
    """A synthesized character becomes ready; refs regenerate; save is a no-op when ready."""
    async with emulated() as (emu, client):
        char = await client.characters.create(
            name="Nova",
            generate=True,
            attributes={"gender": "female", "age": 30, "hair_color": "silver"},
        )
        assert char.status == CharacterStatus.SYNTHESIZING
        assert emu.requests[-1].bucket == "characters_synthesize"
        with pytest.raises(BadRequestError) as not_ready:
            await client.images.create(prompt="portrait", character_id=char.id)
        assert not_ready.value.code == "character_not_ready"
        settle(emu)
        ready = await client.characters.get(char.id)
        assert ready.status == CharacterStatus.READY
        assert len(ready.refs) >= 1
        assert (await client.characters.save(char.id)).status == CharacterStatus.READY
        img = await client.images.create(prompt="portrait", character_id=char.id)
        assert img.character_id == char.id
        regen = await client.characters.refs.regenerate(char.id, pose="front")
        assert regen.status == CharacterStatus.SYNTHESIZING
        assert emu.requests[-1].bucket == "characters_synthesize"
        settle(emu)
        again = await client.characters.resynthesize(char.id, force_all=True)
        assert again.status == CharacterStatus.SYNTHESIZING
        with pytest.raises(BadRequestError):
            await client.characters.save(char.id)


async def test_regenerate_without_credits() -> None:
    """A regenerate the team cannot afford raises ``InsufficientCreditsError``."""
    async with emulated() as (emu, client):
        ticket = await client.characters.upload(png())
        char = await client.characters.create(name="Broke", upload_ids=[ticket.upload_id])
        emu.set_credits(emu.team_id, 0)
        with pytest.raises(InsufficientCreditsError) as info:
            await client.characters.refs.regenerate(char.id, pose="side")
        assert info.value.code in ("insufficient_credits", "balance_too_low")


Call = Callable[[AsyncAurous], Awaitable[Any]]

INVALID: list[tuple[Call, str]] = [
    (lambda c: c.characters.create(name="x"), "upload_ids"),
    (lambda c: c.characters.create(name="x", upload_ids=["upl_1"], generate=True), "upload_ids"),
    (lambda c: c.characters.create(name="x", upload_ids=[]), "upload_ids"),
    (lambda c: c.characters.create(name="x", upload_ids=["upl_1"] * 7), "upload_ids"),
    (lambda c: c.characters.create(name="", upload_ids=["upl_1"]), "name"),
    (
        lambda c: c.characters.create(name="x", generate=True, attributes={"height": "tall"}),
        "attributes.height",
    ),
    (
        lambda c: c.characters.create(
            name="x", upload_ids=["upl_1"], client_reference_id="r" * 257
        ),
        "client_reference_id",
    ),
    (lambda c: c.characters.update("char_1"), "name"),
    (lambda c: c.characters.update("char_1", attributes={"age": "old"}), "attributes.age"),
    (lambda c: c.characters.refs.regenerate("char_1", pose="upside-down"), "pose"),
    (lambda c: c.characters.uploads.init(filename="", content_type="image/png"), "filename"),
    (
        lambda c: c.characters.uploads.init(filename="a" * 121, content_type="image/png"),
        "filename",
    ),
    (
        lambda c: c.characters.uploads.init(filename="a.gif", content_type="image/gif"),
        "content_type",
    ),
    (
        lambda c: c.characters.uploads.init(
            filename="a.png", content_type="image/png", extension="jpg"
        ),
        "extension",
    ),
    (lambda c: c.characters.upload(b"not an image"), "file"),
    (lambda c: c.characters.get(""), "id"),
]


@pytest.mark.parametrize(("call", "param"), INVALID)
async def test_invalid_input_is_refused_before_sending(call: Call, param: str) -> None:
    """Flow exclusivity, counts, poses and upload tickets are checked offline."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await call(client)
        assert info.value.param == param
        assert emu.requests == []


async def test_extension_is_derived_from_the_file_name() -> None:
    """Without ``extension``, ``init`` sends the file name's (or the content type's)."""
    async with emulated() as (_, client):
        jpg = await client.characters.uploads.init(filename="face.jpg", content_type="image/jpeg")
        other = await client.characters.uploads.init(filename="face", content_type="image/webp")
        assert jpg.upload_id != other.upload_id
