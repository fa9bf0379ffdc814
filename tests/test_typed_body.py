"""The typed body parser gives exactly what parsing to JSON and then decoding gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_wire import CASES, _any_generation, payloads

from aurous_async import _json, models
from aurous_async._typed_body import body_parser
from aurous_async._wire import decoder
from aurous_async.models import Generation

#: Every model of the package (the typed pass must handle each or step aside).
MODELS = sorted(
    (value for value in vars(models).values() if isinstance(value, type) and attrs.has(value)),
    key=lambda cls: cls.__name__,
)


def _typed(cls: type, body: bytes) -> tuple[bool, str]:
    """What the resources get through the typed parser: (typed pass taken, result)."""
    try:
        data = body_parser(cls)(body)
    except ValueError:
        return False, "not JSON"
    if type(data) is cls:
        return True, repr(data)
    return False, _general_value(cls, data)


def _general(cls: type, body: bytes) -> str:
    """What parsing to JSON and then decoding gives (the ``repr`` tells 1 from 1.0)."""
    try:
        data = _json.loads(body)
    except ValueError:
        return "not JSON"
    return _general_value(cls, data)


def _general_value(cls: type, data: object) -> str:
    try:
        return repr(decoder(cls)(data))
    except ValueError:
        return "does not fit"


def _body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(payload), ensure_ascii=False).encode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_fixture_takes_the_typed_pass_with_the_same_result(name: str) -> None:
    """The golden bodies of every model decode on the typed pass, to the general result."""
    cls = CASES[name][0]
    for payload in payloads(name):
        body = _body(payload)
        assert _typed(cls, body) == (True, _general(cls, body))


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
def test_every_model_has_a_typed_pass(cls: type) -> None:
    """No model falls back to parsing alone (a field kind the typed pass does not know)."""
    assert body_parser(cls) is not _json.loads


@settings(max_examples=500)
@given(_any_generation, st.booleans())
def test_any_generation_body_gives_the_general_result(payload: Any, ascii_only: bool) -> None:
    """Odd values, wrong types and missing fields: the same model, or the same failure."""
    body = json.dumps(dict(payload), ensure_ascii=ascii_only).encode()
    assert _typed(Generation, body)[1] == _general(Generation, body)


_GENERATION = payloads("generation.json")[0]


@example(b', "id": 7')  # a duplicate key: the last one counts, both ways
@example(b', "x": "\xff"')  # not UTF-8 where the typed pass skips: not JSON
@example(b', "x": "\\ud800"')  # a lone surrogate escape: json.loads takes it
@example(b', "x": NaN')
@example(b', "x": 1e400')
@example(b', "width": 1.0')  # a whole float for an int: the general pass takes it
@example(b', "status": "rendering"')  # an unknown enum value is kept
@example(b', "created_at": 1780000000')  # an epoch number for a timestamp
@example(b', "created_at": "2026-05-04T12:00:00+02:00"')
@example(b', "loras": [{"id": "a", "weight": 1}]')
@example(b', "cost": {"amount": "1"}')
@example(b', "request_id": "req_from_the_body"')  # response metadata is never read
@example(b', "prompt": "\xc3\xa9t\xc3\xa9"')  # UTF-8 text
@example(b', "cfg_rescale": -0')  # an integer for a float: its float, as float(v)
@example(b', "cfg_rescale": 123456789012345678901234567890')
@example(b', "seed": 123456789012345678901234567890')  # beyond 64 bits
@given(st.binary(max_size=40))
def test_bytes_spliced_into_a_body_give_the_general_result(edit: bytes) -> None:
    """Fields added at the end of a real body (the last of a repeated key counts), or
    garbage that breaks it: the agreement holds."""
    body = _body(_GENERATION)[:-1] + edit + b"}"
    assert _typed(Generation, body)[1] == _general(Generation, body)


def test_a_byte_order_mark_goes_the_general_way() -> None:
    body = b"\xef\xbb\xbf" + _body(_GENERATION)
    assert _typed(Generation, body) == (False, _general(Generation, body))


def test_a_model_built_by_the_typed_pass_is_a_normal_model() -> None:
    """Frozen, equal and hashing as one made by ``__init__``, and ``evolve`` works."""
    body = _body(_GENERATION)
    typed = body_parser(Generation)(body)
    assert type(typed) is Generation
    made = decoder(Generation)(_json.loads(body))
    assert typed == made
    assert hash(typed) == hash(made)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        typed.status = models.GenerationStatus.FAILED  # type: ignore[misc]
    assert attrs.evolve(typed, prompt="x").prompt == "x"
    assert typed.request_id is None


@attrs.frozen
class _Checked:
    size: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen(cache_hash=True)
class _CachedHash:
    name: str


_POST_INIT_SEEN: list[str] = []


@attrs.frozen
class _PostInit:
    name: str

    def __attrs_post_init__(self) -> None:
        _POST_INIT_SEEN.append(self.name)


def test_a_model_with_init_logic_is_built_by_its_init() -> None:
    """Validators, a cached hash and ``__attrs_post_init__`` still run on the typed pass."""
    with pytest.raises(ValueError, match="_Checked"):
        decoder(_Checked)(_json.loads(b'{"size": -1}'))
    assert type(body_parser(_Checked)(b'{"size": -1}')) is dict  # refused: the general pass
    cached = body_parser(_CachedHash)(b'{"name": "a"}')
    assert type(cached) is _CachedHash
    assert hash(cached) == hash(_CachedHash("a"))
    post = body_parser(_PostInit)(b'{"name": "a"}')
    assert type(post) is _PostInit
    assert _POST_INIT_SEEN == ["a"]
