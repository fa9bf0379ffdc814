"""Field checks for request bodies; each failure names its documented code and param."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from ._errors import ApiError, bad_format, invalid, missing, out_of_range

if TYPE_CHECKING:
    from ._state import EmulatorState

_MISSING = object()


def reject_unknown(body: Mapping[str, object], allowed: Collection[str]) -> None:
    """Unknown fields are refused, so a typo never silently changes what is billed."""
    for name in body:
        if name not in allowed:
            raise bad_format(name, f"Unknown field '{name}'.")


def text(
    body: Mapping[str, object],
    name: str,
    *,
    required: bool = False,
    min_len: int = 1,
    max_len: int | None = None,
) -> str | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise bad_format(name, f"'{name}' must be a string.")
    if not value.strip() and (required or min_len > 0):
        raise out_of_range(name, f"'{name}' must not be empty or whitespace only.")
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        bounds = f"{min_len}-{max_len}" if max_len is not None else f"at least {min_len}"
        raise out_of_range(name, f"'{name}' must be {bounds} characters long.")
    return value


def integer(
    body: Mapping[str, object],
    name: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    required: bool = False,
) -> int | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise bad_format(name, f"'{name}' must be an integer.")
    _bounds(name, value, lo, hi)
    return value


def number(
    body: Mapping[str, object],
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    required: bool = False,
) -> float | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_format(name, f"'{name}' must be a number.")
    _bounds(name, value, lo, hi)
    return float(value)


def boolean(body: Mapping[str, object], name: str, *, required: bool = False) -> bool | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, bool):
        raise bad_format(name, f"'{name}' must be true or false.")
    return value


def choice(
    body: Mapping[str, object], name: str, choices: Collection[str], *, required: bool = False
) -> str | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or value not in choices:
        raise bad_format(name, f"'{name}' must be one of: {', '.join(choices)}.")
    return value


def items(
    body: Mapping[str, object],
    name: str,
    *,
    min_items: int = 1,
    max_items: int | None = None,
    required: bool = False,
) -> list[object] | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, list):
        raise bad_format(name, f"'{name}' must be an array.")
    if len(value) < min_items or (max_items is not None and len(value) > max_items):
        raise out_of_range(name, f"'{name}' must hold {min_items}-{max_items} items.")
    return value


def mapping(body: Mapping[str, object], name: str) -> dict[str, object] | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, dict):
        raise bad_format(name, f"'{name}' must be an object.")
    return value


def https_url(state: EmulatorState, value: str, name: str, *, max_len: int = 2048) -> str:
    """An ``https://`` URL (or a loopback ``http://`` one when the settings allow it)."""
    if len(value) > max_len:
        raise out_of_range(name, f"'{name}' must be at most {max_len} characters.")
    if value.startswith("https://") and len(value) > len("https://"):
        return value
    loopback = value.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if loopback and state.settings.allow_http_webhooks:
        return value
    raise bad_format(name, f"'{name}' must be an https:// URL.")


def exclusive(body: Mapping[str, object], first: str, second: str, code: str) -> None:
    """400 ``code`` when both fields are present."""
    if body.get(first) is not None and body.get(second) is not None:
        raise invalid(code, f"'{first}' and '{second}' cannot be combined.", second)


def _bounds(name: str, value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise out_of_range(name, f"'{name}' must be between {lo} and {hi}.")


__all__ = ["ApiError"]
