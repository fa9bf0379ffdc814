"""The one cattrs converter: every wire rule of the SDK lives here.

* Unknown fields are ignored; a ``null`` for a field that has a default means the
  default (``None``, ``()``, ``{}``).
* Unknown enum values are kept verbatim (see ``models.OpenStrEnum``).
* Timestamps are RFC 3339 strings; they become aware UTC datetimes and are written
  back with ``Z``.
* Fields marked as response metadata (``request_id``) are never read from or written to
  the body.
* A body that does not fit its model raises ``ValueError`` naming the bad fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .models import RESPONSE_META, OpenStrEnum

__all__ = ["converter", "format_datetime", "parse_datetime", "structure", "unstructure"]

T = TypeVar("T")

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def parse_datetime(value: object) -> datetime:
    """An RFC 3339 string (or epoch number) as an aware UTC datetime.

    Tolerates any number of fractional digits, ``+hh:mm`` offsets and a missing offset
    (read as UTC).

    Raises:
        ValueError: the value is not a timestamp.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    elif isinstance(value, str) and (match := _RFC3339.fullmatch(value.strip())):
        year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        zone = timezone.utc
        if sign is not None:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    else:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_datetime(value: datetime) -> str:
    """An aware (or UTC naive) datetime as RFC 3339 UTC with ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    text = f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _structure_bool(value: object, _: type) -> bool:
    result = _boolean(value)
    if result is None:
        raise ValueError(f"not a boolean: {value!r}")
    return result


def _structure_optional_bool(value: object, _: type) -> bool | None:
    # An optional flag that is not a boolean is unknown: the docs show
    # ``"video_camera_fixed": {}`` in one example.
    return _boolean(value)


def _structure_str(value: object, _: type) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise ValueError(f"not a string: {value!r}")
    return value if isinstance(value, str) else str(value)


def _structure_open_enum(value: object, cls: type[OpenStrEnum]) -> OpenStrEnum:
    # Only strings are enum values; an unknown one becomes a pseudo-member (kept verbatim).
    if not isinstance(value, str):
        raise ValueError(f"not a {cls.__name__} value: {value!r}")
    return cls(value)


def _response_meta(cls: Any) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.metadata.get(RESPONSE_META)]


def _structure_attrs(cls: Any) -> Callable[[Any, Any], Any]:
    overrides: dict[str, Any] = {name: override(omit=True) for name in _response_meta(cls)}
    for field in attrs.fields(attrs.resolve_types(cls)):
        if field.type == bool | None:
            overrides[field.name] = override(struct_hook=_structure_optional_bool)
    base = make_dict_structure_fn(cls, converter, **overrides)
    defaulted = frozenset(f.name for f in attrs.fields(cls) if f.default is not attrs.NOTHING)

    def hook(value: Any, target: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a JSON object for {cls.__name__}, got {value!r:.80}")
        present = {k: v for k, v in value.items() if v is not None or k not in defaulted}
        return base(present, target)

    return hook


def _unstructure_attrs(cls: Any) -> Callable[[Any], Any]:
    omitted: dict[str, Any] = {name: override(omit=True) for name in _response_meta(cls)}
    return make_dict_unstructure_fn(cls, converter, **omitted)


converter = cattrs.Converter()
converter.register_structure_hook(datetime, lambda value, _: parse_datetime(value))
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(str, _structure_str)
# ``str`` hooks dispatch on the MRO, so the ``str`` one alone would also catch every
# ``OpenStrEnum`` (a ``str`` subclass) and hand back plain strings. The more specific
# registration below wins for them, and over cattrs' built-in ``Enum`` hook, which refuses
# unknown values. (A ``lambda t: t is str`` predicate would not do: cattrs' own ``str``
# class hook takes precedence over predicates.)
converter.register_structure_hook(OpenStrEnum, _structure_open_enum)
converter.register_structure_hook_func(lambda t: t is object, lambda value, _: value)
converter.register_structure_hook_factory(attrs.has, _structure_attrs)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_attrs)


def structure(obj: object, cls: type[T]) -> T:
    """Decode JSON-loaded data into ``cls`` (a model, or e.g. ``list[Lora]``).

    Raises:
        ValueError: the data does not fit ``cls``.
    """
    try:
        return converter.structure(obj, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        name = getattr(cls, "__name__", str(cls))
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc))
        else:
            detail = str(exc)
        raise ValueError(f"response does not fit {name}: {detail}") from exc


def unstructure(obj: object, *, drop_none: bool = False) -> Any:
    """Encode a model (or a container of models) as JSON-ready data.

    Args:
        obj: what to encode.
        drop_none: leave out ``None`` values of objects, at every depth (for request
            bodies, where an omitted field differs from ``null``).
    """
    data = converter.unstructure(obj)
    return _without_none(data) if drop_none else data


def _without_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_without_none(item) for item in data]
    return data
