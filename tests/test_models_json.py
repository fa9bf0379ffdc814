"""``Model.to_dict`` / ``to_json`` / ``from_dict``: every public model leaves the process
as JSON and comes back equal."""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_wire import CASES, payloads

from aurous_async import models
from aurous_async._wire import structure
from aurous_async.models import (
    Character,
    File,
    FilePurpose,
    Generation,
    GenerationStatus,
    OpenStrEnum,
    WebhookEndpoint,
)
from aurous_async.webhooks import Callback, Event

UTC = timezone.utc

#: Every public attrs model, and the webhook envelopes.
MODELS: list[type[Any]] = [
    *sorted(
        (
            obj
            for name in models.__all__
            if isinstance(obj := getattr(models, name), type) and attrs.has(obj)
        ),
        key=lambda cls: cls.__name__,
    ),
    Event,
    Callback,
]

_JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
_INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


def values(tp: Any) -> st.SearchStrategy[Any]:
    """Values of the field type ``tp``, as the decoder gives them back."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return st.none() | values(inner)
    if origin is tuple:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if origin is Mapping:
        return st.dictionaries(st.text(), values(args[1]), max_size=3)
    if tp is object:
        return _JSON
    if isinstance(tp, type) and issubclass(tp, OpenStrEnum):
        # Declared members, and values this SDK does not know (kept as they came).
        return st.sampled_from(list(tp)) | st.text().map(tp)
    if attrs.has(tp):
        return instances(tp)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(),
        int: st.integers(-(2**53), 2**53),
        float: st.floats(allow_nan=False, allow_infinity=False),
        bool: st.booleans(),
        datetime: _INSTANTS,
    }
    return simple[tp]


def instances(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of the model ``cls`` with any value in every field."""
    fields = attrs.fields(attrs.resolve_types(cls))
    return st.builds(cls, **{f.alias: values(f.type) for f in fields if f.name != "request_id"})


def only_json_types(data: object) -> bool:
    """Whether ``data`` is made of exactly the types ``json.loads`` returns."""
    if type(data) is dict:
        return all(type(k) is str and only_json_types(v) for k, v in data.items())
    if type(data) is list:
        return all(only_json_types(item) for item in data)
    return data is None or type(data) in (str, int, float, bool)


def test_every_public_model_is_covered() -> None:
    """The round-trip below runs over every attrs class the models module exports."""
    assert len(MODELS) >= 28
    assert {Generation, Character, File, WebhookEndpoint} <= set(MODELS)


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_model_round_trips_through_the_decoder(cls: type[Any], data: st.DataObject) -> None:
    """decode(Model, m.to_dict()) == m, and the dict holds JSON types only."""
    model = data.draw(instances(cls))
    as_dict = model.to_dict()
    assert only_json_types(as_dict)
    assert structure(as_dict, cls) == model
    assert cls.from_dict(as_dict) == model
    assert json.loads(model.to_json()) == as_dict
    assert cls.from_dict(json.loads(model.to_json(indent=None))) == model


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_payloads_survive_to_dict(name: str) -> None:
    """Every documented payload decodes, leaves as a dict and comes back equal."""
    cls = CASES[name][0]
    for payload in payloads(name):
        model = structure(payload, cls)
        assert cls.from_dict(model.to_dict()) == model


def test_to_dict_writes_the_wire_shape() -> None:
    """Timestamps as the API writes them, enums as strings, nested models and lists."""
    generation = Generation.from_dict(payloads("generation.json")[0])
    data = generation.to_dict()
    assert data["created_at"] == "2026-05-04T10:00:00Z"
    assert data["completed_at"] == "2026-05-04T10:00:14Z"
    assert type(data["status"]) is str
    assert data["status"] == "succeeded"
    assert data["cost"] == {
        "amount": 2.0,
        "currency": "credit",
        "breakdown": {"base": 1.0, "enhance": 1.0},
    }
    assert data["loras"] == [
        {"id": "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM", "name": "Sunset Style", "weight": None}
    ]
    assert data["output_urls"] == list(generation.output_urls)


def test_unknown_enum_values_are_kept_as_they_came() -> None:
    """A status this SDK does not know is written back verbatim."""
    generation = Generation.from_dict(
        {"id": "img_1", "status": "rendering", "created_at": "2026-05-04T10:00:00Z"}
    )
    assert generation.to_dict()["status"] == "rendering"
    assert Generation.from_dict(generation.to_dict()).status == "rendering"


def test_request_id_is_left_out() -> None:
    """The response's request id is metadata, not part of the dict."""
    generation = Generation(
        "img_1", GenerationStatus.QUEUED, datetime(2026, 5, 4, tzinfo=UTC), request_id="req_1"
    )
    assert "request_id" not in generation.to_dict()
    assert "req_1" not in generation.to_json()


def test_timestamps_are_written_in_utc() -> None:
    """An instant in another zone is written as the same instant in UTC with Z."""
    moment = datetime(2026, 5, 4, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    generation = Generation("img_1", GenerationStatus.QUEUED, moment)
    assert generation.to_dict()["created_at"] == "2026-05-04T10:00:00.25Z"


def test_free_form_data_becomes_plain_json() -> None:
    """Read-only mappings and tuples in free-form fields become dicts and lists."""
    file = File(
        "file_1",
        FilePurpose.REFERENCE,
        datetime(2026, 5, 4, tzinfo=UTC),
        metadata=MappingProxyType({"a": MappingProxyType({"b": (1, "two")})}),
    )
    data = file.to_dict()
    assert data["metadata"] == {"a": {"b": [1, "two"]}}
    assert only_json_types(data)


def test_to_json_indents_like_openai_and_compacts_on_request() -> None:
    """Two spaces by default; indent=None gives one compact line."""
    generation = Generation("img_1", GenerationStatus.QUEUED, datetime(2026, 5, 4, tzinfo=UTC))
    text = generation.to_json()
    assert text.startswith('{\n  "id": "img_1",\n  "status": "queued",')
    compact = generation.to_json(indent=None)
    assert "\n" not in compact
    assert compact.startswith('{"id":"img_1","status":"queued","created_at":"2026-05-04T00:00:00Z"')


def test_from_dict_names_what_does_not_fit() -> None:
    """Bad data raises ValueError naming the field."""
    with pytest.raises(ValueError, match="created_at"):
        Generation.from_dict({"id": "img_1", "status": "queued", "created_at": "yesterday"})


def test_models_stay_slotted() -> None:
    """The shared base adds no instance dict (decoding fills slots directly)."""
    for cls in MODELS:
        assert "__dict__" not in dir(cls), cls


def test_pydantic_serializes_to_dict_output_as_the_api_would() -> None:
    """FastAPI's serializer (pydantic) writes a returned to_dict() without custom encoders."""
    pydantic = pytest.importorskip("pydantic")
    generation = Generation.from_dict(payloads("generation.json")[0])
    adapter = pydantic.TypeAdapter(dict[str, object])
    written = adapter.dump_json(generation.to_dict())
    assert json.loads(written) == generation.to_dict()
    assert Generation.from_dict(json.loads(written)) == generation
