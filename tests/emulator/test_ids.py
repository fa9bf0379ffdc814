"""Emulator ids: ULIDs in Crockford base32, ordered by time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurous_async.testing import _ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(ms: int, randomness: bytes) -> str:
    """The ULID spec, digit by digit."""
    value = (ms << 80) | int.from_bytes(randomness, "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@given(st.integers(min_value=0, max_value=2**48 - 1), st.binary(min_size=10, max_size=10))
def test_ulid_matches_the_spec(ms: int, randomness: bytes) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_ids.os, "urandom", lambda n: randomness)
        now = ms / 1000
        assert _ids.ulid(now) == _reference(int(now * 1000), randomness)


def test_ids_are_prefixed_and_sort_by_time() -> None:
    first, second = _ids.new_id("img", 1_700_000_000.0), _ids.new_id("img", 1_700_000_000.002)
    assert first.startswith("img_")
    assert len(first) == 30
    assert set(first[4:]) <= set(CROCKFORD)
    assert first < second
