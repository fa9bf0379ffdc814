"""Enum fields structure to their enum; unknown values are kept (the OpenStrEnum hook)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aurous_async._wire import structure, unstructure
from aurous_async.models import (
    Character,
    CharacterStatus,
    Generation,
    GenerationStatus,
    MediaType,
    OpenStrEnum,
    UsageEvent,
    UsageEventType,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> dict[str, object]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def test_generation_enum_fields_are_enum_members() -> None:
    """Status and media type structure to their enum's declared members, not plain str."""
    generation = structure(_fixture("generation.json"), Generation)
    assert type(generation.status) is GenerationStatus
    assert generation.status is GenerationStatus.SUCCEEDED
    assert type(generation.media_type) is MediaType
    assert generation.kind is MediaType.IMAGE
    assert generation.is_terminal


@pytest.mark.parametrize(
    ("fixture", "cls", "field", "enum"),
    [
        ("character.json", Character, "status", CharacterStatus),
        ("usage_event.json", UsageEvent, "type", UsageEventType),
    ],
)
def test_other_models_enum_fields_are_enum_members(
    fixture: str, cls: type[object], field: str, enum: type[OpenStrEnum]
) -> None:
    """Every open enum field decodes to that enum."""
    value = getattr(structure(_fixture(fixture), cls), field)
    assert type(value) is enum
    assert value in enum.__members__.values()


def test_unknown_enum_value_is_kept() -> None:
    """A status this SDK does not know is kept verbatim, typed, and not terminal."""
    data = _fixture("generation.json") | {"status": "rendering", "media_type": "hologram"}
    generation = structure(data, Generation)
    assert type(generation.status) is GenerationStatus
    assert generation.status == "rendering"
    assert generation.status.value == "rendering"
    assert generation.status not in list(GenerationStatus)
    assert not generation.is_terminal
    assert generation.media_type == "hologram"
    assert unstructure(generation)["status"] == "rendering"


@pytest.mark.parametrize("bad", [5, None, {}, [], True])
def test_non_string_enum_value_is_refused(bad: object) -> None:
    """An enum field holding a non-string is a shape error, not a pseudo-member."""
    with pytest.raises(ValueError, match="does not fit GenerationStatus"):
        structure(bad, GenerationStatus)


@pytest.mark.parametrize("bad", [{}, [], None])
def test_plain_string_field_refuses_containers(bad: object) -> None:
    """A ``str`` field never silently becomes the text of an object or a list."""
    with pytest.raises(ValueError, match="not a string"):
        structure(bad, str)


def test_plain_string_field_stays_plain() -> None:
    """A ``str`` target yields a plain ``str``, and numbers are written as text."""
    assert type(structure("queued", str)) is str
    assert structure(7, str) == "7"
