"""Dicts are accepted wherever a typed parameter object is, against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from _sdk_helpers import emulated

from aurous_async import InvalidParameterError
from aurous_async.models import CharacterAttributes, LoraWeight

pytestmark = pytest.mark.anyio

GOLDEN_HOUR = "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM"


async def test_a_dict_lora_stack_creates_and_prices_like_the_typed_one() -> None:
    """images.create and estimate take {"lora", "weight"} dicts, mixed with LoraWeight."""
    async with emulated() as (emu, client):
        stack: list[Any] = [
            {"lora": GOLDEN_HOUR, "weight": 0.8},
            {"lora": "watercolor-dreams"},
            LoraWeight("anime-cel-shading", 1.5),
        ]
        created = await client.images.create(prompt="a lighthouse", loras=stack)
        assert [lora.name for lora in created.loras] == [
            "Golden Hour Photography",
            "Watercolor Dreams",
            "Anime Cel Shading",
        ]
        typed = await client.images.estimate(
            prompt="a lighthouse",
            loras=[LoraWeight(GOLDEN_HOUR, 0.8), LoraWeight("watercolor-dreams")],
        )
        as_dicts = await client.images.estimate(
            prompt="a lighthouse",
            loras=[{"lora": GOLDEN_HOUR, "weight": 0.8}, {"lora": "watercolor-dreams"}],
        )
        assert as_dicts == typed
        assert [r.status for r in emu.requests] == [201, 200, 200]


async def test_create_many_takes_dict_stacks_in_its_request_dicts() -> None:
    """A create_many request dict may hold its LoRA stack as dicts too."""
    async with emulated() as (_, client):
        requests = [{"prompt": "one", "loras": [{"lora": GOLDEN_HOUR}]}]
        created = [g async for g in client.images.create_many(requests)]
        assert [lora.id for lora in created[0].loras] == [GOLDEN_HOUR]


BAD_STACKS: list[tuple[list[Any], str, str]] = [
    ([{"lora": GOLDEN_HOUR, "wieght": 0.8}], "loras.wieght", "allowed keys: lora, weight"),
    ([{"weight": 0.8}], "loras.lora", "missing required key 'lora' (in loras[0])"),
    ([{"lora": GOLDEN_HOUR, "weight": "high"}], "loras.weight", "must be a number, got str"),
    ([{"lora": GOLDEN_HOUR}, {"lora": 3}], "loras.lora", "must be a string, got int (in loras[1])"),
    ([GOLDEN_HOUR], "loras", "loras[0] must be a LoraWeight or a dict, got str"),
]


@pytest.mark.parametrize(("stack", "param", "words"), BAD_STACKS)
async def test_a_bad_dict_stack_is_refused_before_sending(
    stack: list[Any], param: str, words: str
) -> None:
    """Each bad dict raises InvalidParameterError naming the real problem; nothing is sent."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.images.create(prompt="a lighthouse", loras=stack)
        assert info.value.param == param
        assert words in str(info.value)
        with pytest.raises(InvalidParameterError):
            await client.images.estimate(prompt="a lighthouse", loras=stack)
        assert emu.requests == []


async def test_character_attributes_as_a_dict_or_typed_give_the_same_character() -> None:
    """characters.create takes attributes as CharacterAttributes or as a dict alike."""
    async with emulated() as (_, client):
        typed = await client.characters.create(
            name="Aurora", generate=True, attributes=CharacterAttributes(gender="female", age=28)
        )
        as_dict = await client.characters.create(
            name="Aurora", generate=True, attributes={"gender": "female", "age": 28}
        )
        assert (
            typed.attributes == as_dict.attributes == CharacterAttributes(gender="female", age=28)
        )


@pytest.mark.parametrize(
    ("attributes", "param", "words"),
    [
        ({"mood": "happy"}, "attributes.mood", "unknown key 'mood'; allowed keys: gender, age"),
        ({"age": "28"}, "attributes.age", "must be an integer, got str"),
        (["female"], "attributes", "must be a CharacterAttributes or a dict, got list"),
    ],
)
async def test_bad_attribute_dicts_are_refused_before_sending(
    attributes: Any, param: str, words: str
) -> None:
    """A bad attributes dict names the key or type at fault; nothing is sent."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.characters.create(name="Aurora", generate=True, attributes=attributes)
        assert info.value.param == param
        assert words in str(info.value)
        with pytest.raises(InvalidParameterError):
            await client.characters.update("char_1", attributes=attributes)
        assert emu.requests == []
