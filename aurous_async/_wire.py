"""The one cattrs converter: every wire rule of the SDK lives here.

* Unknown fields are ignored; a ``null`` for a field that has a default means the
  default (``None``, ``()``, ``{}``).
* Unknown enum values are kept verbatim (see ``models.OpenStrEnum``).
* Timestamps are RFC 3339 strings; they become aware UTC datetimes and are written
  back with ``Z``.
* Fields marked as response metadata (``request_id``) are never read from or written to
  the body.
* A body that does not fit its model raises ``ValueError`` naming the bad fields.

Decoding is on the hot path of every call, so there are two converters with the same
rules: a fast one (``detailed_validation=False``) that decodes, and the detailed one that
runs only when the fast one fails, to name every bad field in the error.
"""

from __future__ import annotations

import re
import types
import typing
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
_PLAIN_UTC = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2}[Zz]", re.ASCII
)


def parse_datetime(value: object) -> datetime:
    """An RFC 3339 string (or epoch number) as an aware UTC datetime.

    Tolerates any number of fractional digits, ``+hh:mm`` offsets and a missing offset
    (read as UTC).

    Raises:
        ValueError: the value is not a timestamp.
    """
    if type(value) is str and len(value) == 20:
        fast = _parse_plain_utc(value)
        if fast is not None:
            return fast
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


def _parse_plain_utc(text: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (what the API sends), or ``None`` for any other shape.

    The general parser gives the same result for this shape, only slower. The hour is
    limited to 00-23 because ``fromisoformat`` reads ``24:00:00`` as midnight on 3.12+.
    """
    if _PLAIN_UTC.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text[:10] + "T" + text[11:19])
    except ValueError:
        return None  # e.g. February 30th: the general parser words the error
    return moment.replace(tzinfo=timezone.utc)


def _structure_datetime(value: object, _: type) -> datetime:
    return parse_datetime(value)


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
    if type(value) is str:
        return value
    if isinstance(value, (dict, list)) or value is None:
        raise ValueError(f"not a string: {value!r}")
    return value if isinstance(value, str) else str(value)


def _structure_open_enum(value: object, cls: type[OpenStrEnum]) -> OpenStrEnum:
    # Only strings are enum values; an unknown one becomes a pseudo-member (kept verbatim).
    if type(value) is str:
        members = _ENUM_MEMBERS.get(cls)
        if members is None:
            members = _ENUM_MEMBERS[cls] = {member.value: member for member in cls}
        member = members.get(value)
        if member is not None:
            # What ``cls(value)`` returns, without the trip through ``Enum.__call__``.
            return member
    if not isinstance(value, str):
        raise ValueError(f"not a {cls.__name__} value: {value!r}")
    return cls(value)


#: Declared members of each ``OpenStrEnum`` by value, filled as they are decoded.
_ENUM_MEMBERS: dict[type[OpenStrEnum], dict[str, OpenStrEnum]] = {}


def _optional_of(tp: Any) -> Any:
    """``X`` for ``X | None`` (or ``Optional[X]``), else ``None``."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    if len(args) != 2 or type(None) not in args:
        return None
    return args[0] if args[1] is type(None) else args[1]


def _null_hook(
    inner: Callable[[Any, Any], Any], inner_type: Any, field: Any
) -> Callable[[Any, Any], Any]:
    """``inner`` for a value; for ``null`` the field's default (as if the key were absent),
    or ``None`` when it has none."""
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            raise TypeError(f"{field.name}: a Factory(takes_self=True) default is not supported")
        make: Callable[[], Any] = default.factory

        def made(value: Any, _: Any) -> Any:
            return make() if value is None else inner(value, inner_type)

        return made
    null = None if default is attrs.NOTHING else default
    if null is None and inner_type in _SCALARS and inner is _SCALAR_HOOKS[inner_type]:
        return _SCALARS[inner_type]

    def defaulted(value: Any, _: Any) -> Any:
        return null if value is None else inner(value, inner_type)

    return defaulted


# Fused ``X | None`` hooks for the common scalars: one call per field instead of two.
def _optional_str(value: Any, _: Any) -> str | None:
    return value if value is None or type(value) is str else _structure_str(value, str)


def _optional_int(value: Any, _: Any) -> int | None:
    return value if value is None or type(value) is int else int(value)


def _optional_float(value: Any, _: Any) -> float | None:
    return value if value is None or type(value) is float else float(value)


_SCALARS: dict[type, Callable[[Any, Any], Any]] = {
    str: _optional_str,
    int: _optional_int,
    float: _optional_float,
}
#: The hooks the fused ones stand for (cattrs' own for ``int`` and ``float``: ``cls(value)``).
_SCALAR_HOOKS: dict[type, object] = {
    str: _structure_str,
    int: cattrs.BaseConverter._structure_call,
    float: cattrs.BaseConverter._structure_call,
}


def _response_meta(cls: Any) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.metadata.get(RESPONSE_META)]


def _structure_attrs(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], Any]]:
    def factory(cls: Any) -> Callable[[Any, Any], Any]:
        meta = _response_meta(cls)
        overrides: dict[str, Any] = {name: override(omit=True) for name in meta}
        for field in attrs.fields(attrs.resolve_types(cls)):
            if field.name in meta:
                continue
            optional = _optional_of(field.type)
            inner: Callable[[Any, Any], Any]
            if field.type == bool | None:
                inner, inner_type = _structure_optional_bool, field.type
            elif optional is not None:
                # Resolved once here, not dispatched per value as cattrs' union hook does.
                inner, inner_type = conv.get_structure_hook(optional), optional
            elif field.default is not attrs.NOTHING:
                inner, inner_type = conv.get_structure_hook(field.type), field.type
            else:
                continue
            overrides[field.name] = override(struct_hook=_null_hook(inner, inner_type, field))
        base = make_dict_structure_fn(cls, conv, **overrides)

        def hook(value: Any, target: Any) -> Any:
            if type(value) is not dict and not isinstance(value, Mapping):
                raise ValueError(f"expected a JSON object for {cls.__name__}, got {value!r:.80}")
            return base(value, target)

        return hook

    return factory


def _unstructure_attrs(cls: Any) -> Callable[[Any], Any]:
    omitted: dict[str, Any] = {name: override(omit=True) for name in _response_meta(cls)}
    return make_dict_unstructure_fn(cls, converter, **omitted)


def _configure(conv: cattrs.Converter) -> cattrs.Converter:
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(str, _structure_str)
    # ``str`` hooks dispatch on the MRO, so the ``str`` one alone would also catch every
    # ``OpenStrEnum`` (a ``str`` subclass) and hand back plain strings. The more specific
    # registration below wins for them, and over cattrs' built-in ``Enum`` hook, which
    # refuses unknown values. (A ``lambda t: t is str`` predicate would not do: cattrs' own
    # ``str`` class hook takes precedence over predicates.)
    conv.register_structure_hook(OpenStrEnum, _structure_open_enum)
    conv.register_structure_hook_func(lambda t: t is object, lambda value, _: value)
    conv.register_structure_hook_factory(attrs.has, _structure_attrs(conv))
    return conv


converter = _configure(cattrs.Converter())
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_attrs)
#: Decodes; ``converter`` (detailed validation) runs only to explain a failure.
_fast = _configure(cattrs.Converter(detailed_validation=False))


def structure(obj: object, cls: type[T]) -> T:
    """Decode JSON-loaded data into ``cls`` (a model, or e.g. ``list[Lora]``).

    Raises:
        ValueError: the data does not fit ``cls``.
    """
    try:
        return _fast.structure(obj, cls)
    except Exception:
        pass  # decode again with detailed validation, to name every bad field
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
