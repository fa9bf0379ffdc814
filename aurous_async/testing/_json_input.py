"""Reading JSON that clients send: bounded in size and depth, finite numbers only.

Every JSON the emulator reads from a request (bodies, the ``metadata`` form field, page
tokens) goes through ``parse``. Without the bounds a body nested 50,000 deep overflows
the decoder's recursion limit and a ``NaN`` would be echoed back as invalid JSON; with
them, hostile input is a plain 400 like any other malformed value. Numbers are bounded
too: no ``NaN``/``Infinity``, no float literal that overflows, no integer literal longer
than ``MAX_INT_DIGITS``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

#: The largest JSON body read (the largest valid request is a few tens of KiB).
MAX_BYTES = 1024 * 1024
#: The deepest nesting accepted (the deepest valid request nests four levels).
MAX_DEPTH = 32
#: The longest integer literal read (an int64 has 19 digits; converting a huge literal
#: takes quadratic time where the interpreter does not cap it, as 3.10 does not).
MAX_INT_DIGITS = 40


class JsonInputError(ValueError):
    """The input is not JSON the emulator accepts; the message says why, for the client."""


def parse(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> object:
    """Decode UTF-8 ``raw``; ``JsonInputError`` for bad syntax, too large, too deep or
    non-finite."""
    if len(raw) > max_bytes:
        raise JsonInputError(f"The JSON is larger than {max_bytes} bytes.")
    decoder = _STRICT if _suspect(raw) else _PLAIN
    try:
        value = decoder.decode(raw.decode("utf-8"))
    except RecursionError:
        raise _too_deep(max_depth) from None
    except JsonInputError:
        raise
    except (ValueError, UnicodeDecodeError):
        raise JsonInputError("The JSON is not valid.") from None
    # Nesting deeper than ``max_depth`` needs more brackets than that: most bodies are
    # cleared by two counts, without walking the value.
    if raw.count(b"[") + raw.count(b"{") > max_depth and _depth(value) > max_depth:
        raise _too_deep(max_depth)
    return value


def _depth(value: object) -> int:
    """How deeply containers nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def _too_deep(max_depth: int) -> JsonInputError:
    return JsonInputError(f"The JSON nests deeper than {max_depth} levels.")


def _refuse_constant(name: str) -> float:
    raise JsonInputError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"The number {text[:20]} is out of range.")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise JsonInputError(f"The number {text[:20]}... is out of range.")
    return int(text)


_PLAIN = json.JSONDecoder()
_STRICT = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
)
#: Digits folded to ``0`` and ``E`` to ``e``, so a few substring searches find every
#: literal the strict decoder must see: a long digit run, a three-digit exponent, the
#: non-numbers. A string holding one of these only costs the slower decoder.
_FOLD = bytes.maketrans(b"123456789E", b"000000000e")
_MARKS = (b"0" * (MAX_INT_DIGITS + 1), b"e000", b"e+000", b"NaN", b"Infinity")


def _suspect(raw: bytes) -> bool:
    """Whether ``raw`` may hold a number literal the plain decoder would accept wrongly
    (its number hooks cost a Python call per number, so they run only when needed)."""
    folded = raw.translate(_FOLD)
    return any(mark in folded for mark in _MARKS)
