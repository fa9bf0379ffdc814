"""``_json.loads`` reads every body exactly as ``json.loads`` does."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurous_async import _json

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def _same(left: object, right: object) -> bool:
    """Equal values of the same types (floats by repr: -0.0 and NaN count)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return repr(left) == repr(right)
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        assert isinstance(right, dict)
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    return left == right


def _outcome(parse: object, body: bytes) -> tuple[str, object]:
    assert callable(parse)
    try:
        return "ok", parse(body)
    except (ValueError, RecursionError):
        return "error", None


def _assert_agrees(body: bytes) -> None:
    ours, stdlib = _outcome(_json.loads, body), _outcome(json.loads, body)
    assert ours[0] == stdlib[0], body
    assert _same(ours[1], stdlib[1]), body


@settings(max_examples=400)
@given(_values, st.booleans(), st.booleans())
def test_any_json_document_reads_as_json_loads_reads_it(
    value: object, ensure_ascii: bool, indent: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=2 if indent else None)
    _assert_agrees(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=400)
@given(st.binary(max_size=64))
def test_any_bytes_read_or_fail_as_json_loads(body: bytes) -> None:
    _assert_agrees(body)


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b"[Infinity, -Infinity]",
        b"1e400",
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',
        b"123456789012345678901234567890",
        b"{} x",
        b"[1, 2,]",
        b'"\xff"',
        b"",
    ],
)
def test_what_msgspec_refuses_is_read_by_the_standard_library(body: bytes) -> None:
    _assert_agrees(body)


def test_a_body_nested_too_deeply_is_an_error_not_a_crash() -> None:
    with pytest.raises(RecursionError):
        _json.loads(b"[" * 100_000 + b"]" * 100_000)
