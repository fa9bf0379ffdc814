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
rules: a fast one that decodes, and the detailed one (``detailed_validation=True``) that
runs only when the fast one fails, to name every bad field in the error.

The fast converter decodes each model with a generated function (see
``_generate_decoder``): straight-line Python source, made once per class, that reads every
field into a local and calls the class once. The field hooks are resolved when the source
is made, and the common ones (strings, numbers, flags, enums, tuples, timestamps) are
written out as type checks whose fast branch needs no call; anything unusual still goes
through the hook. A generated decoder may fail differently from the hooks it stands for,
never succeed differently: any failure only sends the body to the detailed converter.
"""

from __future__ import annotations

import json
import linecache
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .models import RESPONSE_META, OpenStrEnum

__all__ = [
    "converter",
    "decoder",
    "format_datetime",
    "parse_datetime",
    "structure",
    "to_json_data",
    "to_json_text",
    "unstructure",
]

T = TypeVar("T")
#: A cattrs structure hook: ``hook(value, type)``.
Hook = Callable[[Any, Any], Any]

_ISO_Z = sys.version_info >= (3, 11)
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
    # A fast path for ``YYYY-MM-DDTHH:MM:SSZ``, the shape the API sends. With these
    # separators in place and ASCII only, ``fromisoformat`` accepts only digits between
    # them, as the general parser does. Hour 24 goes to the general parser, which refuses
    # it; newer Pythons' ``fromisoformat`` reads ``24:00:00`` as the next midnight.
    if (
        type(value) is str
        and len(value) == 20
        and value[4::3] == "--T::Z"
        and value[11:13] < "24"
        and value.isascii()
    ):
        try:
            # 3.11 reads the "Z" itself; 3.10 needs it spelled as an offset.
            return datetime.fromisoformat(value if _ISO_Z else value[:19] + "+00:00")
        except ValueError:
            pass  # e.g. February 30th: the general parser words the error
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
        member = _enum_members(cls).get(value)
        if member is not None:
            return member
    if not isinstance(value, str):
        raise ValueError(f"not a {cls.__name__} value: {value!r}")
    return cls(value)


def _enum_members(cls: type[OpenStrEnum]) -> dict[str, OpenStrEnum]:
    """The declared members of ``cls`` by value: what ``cls(value)`` returns for them,
    without the trip through ``Enum.__call__``."""
    members = _ENUM_MEMBERS.get(cls)
    if members is None:
        members = _ENUM_MEMBERS[cls] = {member.value: member for member in cls}
    return members


_ENUM_MEMBERS: dict[type[OpenStrEnum], dict[str, OpenStrEnum]] = {}


def _optional_of(tp: Any) -> Any:
    """``X`` for ``X | None`` (or ``Optional[X]``), else ``None``."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    if len(args) != 2 or type(None) not in args:
        return None
    return args[0] if args[1] is type(None) else args[1]


def _value_hook(conv: cattrs.Converter, field: Any) -> tuple[Hook, Any, bool]:
    """How ``field`` decodes a value: the hook, the type to pass it, and whether ``null``
    means the field's default (as if the key were absent)."""
    if field.type == bool | None:
        return _structure_optional_bool, field.type, True
    optional = _optional_of(field.type)
    if optional is not None:
        # Resolved once here, not dispatched per value as cattrs' union hook does.
        return conv.get_structure_hook(optional), optional, True
    return conv.get_structure_hook(field.type), field.type, field.default is not attrs.NOTHING


def _null_hook(inner: Hook, inner_type: Any, field: Any) -> Hook:
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

    def defaulted(value: Any, _: Any) -> Any:
        return null if value is None else inner(value, inner_type)

    return defaulted


def _response_meta(cls: Any) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.metadata.get(RESPONSE_META)]


def _body_fields(cls: Any) -> list[attrs.Attribute[Any]]:
    """The fields of ``cls`` read from the body, types resolved."""
    meta = _response_meta(cls)
    return [f for f in attrs.fields(attrs.resolve_types(cls)) if f.name not in meta]


def _structure_attrs(conv: cattrs.Converter) -> Callable[[Any], Hook]:
    """Model hooks made by cattrs, with this module's rules as field overrides."""

    def factory(cls: Any) -> Hook:
        overrides: dict[str, Any] = {name: override(omit=True) for name in _response_meta(cls)}
        for field in _body_fields(cls):
            inner, inner_type, nullable = _value_hook(conv, field)
            if nullable:
                overrides[field.name] = override(struct_hook=_null_hook(inner, inner_type, field))
        base = make_dict_structure_fn(cls, conv, **overrides)

        def hook(value: Any, target: Any) -> Any:
            if type(value) is not dict and not isinstance(value, Mapping):
                raise ValueError(f"expected a JSON object for {cls.__name__}, got {value!r:.80}")
            return base(value, target)

        return hook

    return factory


# --- generated decoders (the fast converter's model hooks) ------------------------------


def _generated_decoders(conv: cattrs.Converter) -> Callable[[Any], Hook]:
    """Model hooks that are generated functions (``_structure_attrs`` for a class with a
    field they do not handle)."""
    general = _structure_attrs(conv)

    def factory(cls: Any) -> Hook:
        fields = _body_fields(cls)
        if not all(_is_generated_field(field) for field in fields):
            return general(cls)
        return _generate_decoder(conv, cls, fields)

    return factory


def _is_generated_field(field: attrs.Attribute[Any]) -> bool:
    """Whether a generated decoder handles ``field``: a typed ``__init__`` argument with no
    attrs converter and no default made from the instance."""
    default: Any = field.default
    takes_self = isinstance(default, attrs.Factory) and default.takes_self  # type: ignore[arg-type]
    return field.init and field.type is not None and field.converter is None and not takes_self


def _mapping_get(body: Mapping[str, Any]) -> Callable[[str], Any]:
    """``dict.get`` for another mapping, read as cattrs reads one (``in``, then ``[]``)."""
    return lambda key: body[key] if key in body else None  # noqa: SIM401


#: The globals every generated decoder may use.
_DECODER_GLOBALS: dict[str, object] = {
    "Mapping": Mapping,
    "boolean": _boolean,
    "mapping_get": _mapping_get,
    "open_enum": _structure_open_enum,
    "parse_datetime": parse_datetime,
    "structure_bool": _structure_bool,
    "structure_str": _structure_str,
}


def _generate_decoder(conv: cattrs.Converter, cls: Any, fields: list[attrs.Attribute[Any]]) -> Hook:
    """A function decoding a JSON object into ``cls``, with the rules of ``_structure_attrs``.

    Its source reads each field into a local ``f_<name>`` and ends in one call of ``cls``.
    """
    names: dict[str, object] = {**_DECODER_GLOBALS, "model": cls}
    function = f"decode_{cls.__name__}"
    lines = [
        f"def {function}(o, _=None):",
        "    if type(o) is dict:",
        "        get = o.get",
        "    elif isinstance(o, Mapping):",
        "        get = mapping_get(o)",
        "    else:",
        f"        raise ValueError('not a JSON object for {cls.__name__}')",
    ]
    # Fields with a default first, as cattrs reads them: a body is read in the same order.
    for field in sorted(fields, key=lambda field: field.default is attrs.NOTHING):
        lines += ["    " + line for line in _read_field(conv, field, names)]
    lines.append(f"    return model({_init_arguments(cls, fields)})")
    filename = f"<aurous_async._wire decoder for {cls.__module__}.{cls.__qualname__}>"
    decoder: Hook = define_generated(lines, filename, names, function)  # type: ignore[assignment]
    return decoder


def define_generated(
    lines: list[str], filename: str, names: dict[str, object], function: str
) -> object:
    """Run generated source lines in ``names`` and return the function they define.

    The source is registered under ``filename``, so tracebacks and debuggers show it.
    """
    source = "\n".join(lines) + "\n"
    exec(compile(source, filename, "exec"), names)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return names[function]


def _read_field(
    conv: cattrs.Converter, field: attrs.Attribute[Any], names: dict[str, object]
) -> list[str]:
    """Source lines setting ``f_<name>`` from the body ``o``."""
    hook, tp, nullable = _value_hook(conv, field)
    key, local = repr(field.name), f"f_{field.name}"
    decode = f"{local} = {_decode_expression(conv, 'v', hook, tp, field.name, names)}"
    # With a default, an absent field reads as null: both mean the default.
    read = f"v = o[{key}]" if field.default is attrs.NOTHING else f"v = get({key})"
    if not nullable:
        return [read, decode]
    null = _default_expression(field, names)
    return [read, "if v is None:", f"    {local} = {null}", "else:", f"    {decode}"]


def _decode_expression(
    conv: cattrs.Converter, var: str, hook: Hook, tp: Any, name: str, names: dict[str, object]
) -> str:
    """An expression with the value of ``hook(var, tp)``, its common cases as type checks."""
    if hook is _structure_str:
        return f"{var} if type({var}) is str else structure_str({var}, str)"
    if hook is cattrs.BaseConverter._structure_call and tp in (int, float):
        return f"{var} if type({var}) is {tp.__name__} else {tp.__name__}({var})"
    if hook is _structure_bool:
        return f"{var} if type({var}) is bool else structure_bool({var}, bool)"
    if hook is _structure_optional_bool:
        return f"{var} if type({var}) is bool else boolean({var})"
    if hook is _structure_datetime:
        return f"parse_datetime({var})"
    if hook is _structure_open_enum:
        members = _bind(names, f"_{name}_members", _enum_members(tp))
        enum = _bind(names, f"_{name}_type", tp)
        return (
            f"{members}[{var}] if type({var}) is str and {var} in {members}"
            f" else open_enum({var}, {enum})"
        )
    item = _tuple_item(tp)
    if (
        item is not None
        and getattr(hook, "__func__", None) is cattrs.BaseConverter._structure_tuple
    ):
        # Any iterable, as cattrs' hook takes: a string gives its characters.
        each = _decode_expression(
            conv, "item", conv.get_structure_hook(item), item, f"{name}_item", names
        )
        return f"tuple([{each} for item in {var}])"
    return f"{_bind(names, f'_{name}_hook', hook)}({var}, {_bind(names, f'_{name}_type', tp)})"


def _tuple_item(tp: Any) -> Any:
    """``X`` for ``tuple[X, ...]`` (``X`` not ``Any`` or ``object``), else ``None``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
        return None
    return None if args[0] in (Any, object) else args[0]


def _default_expression(field: attrs.Attribute[Any], names: dict[str, object]) -> str:
    """An expression for the value ``null`` stands for in ``field``."""
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return _bind(names, f"_{field.name}_factory", default.factory) + "()"
    if default is attrs.NOTHING or default is None:
        return "None"
    return _bind(names, f"_{field.name}_default", default)


def _init_arguments(cls: Any, fields: list[attrs.Attribute[Any]]) -> str:
    """The arguments of the ``cls`` call: positional up to the first field that is keyword
    only or left out (response metadata), then by keyword (positional ones are cheaper)."""
    passed = {field.name for field in fields}
    arguments: list[str] = []
    in_order = True
    for field in attrs.fields(cls):
        in_order = in_order and field.name in passed and not field.kw_only
        if field.name in passed:
            arguments.append(f"f_{field.name}" if in_order else f"{field.alias}=f_{field.name}")
    return ", ".join(arguments)


def _bind(names: dict[str, object], name: str, value: object) -> str:
    """Make ``value`` a global of generated source, as ``name`` or (if taken) a variant."""
    unique, count = name, 1
    while unique in names:
        count += 1
        unique = f"{name}_{count}"
    names[unique] = value
    return unique


def _unstructure_attrs(cls: Any) -> Callable[[Any], Any]:
    omitted: dict[str, Any] = {name: override(omit=True) for name in _response_meta(cls)}
    return make_dict_unstructure_fn(cls, converter, **omitted)


def _configure(
    conv: cattrs.Converter, model_hooks: Callable[[cattrs.Converter], Callable[[Any], Hook]]
) -> cattrs.Converter:
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
    conv.register_structure_hook_factory(attrs.has, model_hooks(conv))
    return conv


def _unstructure_enum(member: OpenStrEnum) -> str:
    # A plain ``str``, so the data is JSON to any encoder, not only to ``json``.
    return str.__str__(member._value_)


def _unstructure_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return {key: converter.unstructure(item) for key, item in value.items()}


def _unstructure_tuple(value: tuple[Any, ...]) -> list[Any]:
    return [converter.unstructure(item) for item in value]


def _unstructure_object(value: object) -> object:
    # A field typed ``object`` (free-form data) holds anything: go by what it is.
    return value if type(value) is object else converter.unstructure(value)


def _is_other_mapping(tp: Any) -> bool:
    """Whether ``tp`` is a mapping class other than ``dict`` (a ``MappingProxyType``...)."""
    return isinstance(tp, type) and tp is not dict and issubclass(tp, Mapping)


converter = _configure(cattrs.Converter(), _structure_attrs)
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_unstructure_hook(OpenStrEnum, _unstructure_enum)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_attrs)
# Free-form data (``metadata``, an event's ``data``) is unstructured by its runtime type:
# read-only mappings and tuples become what JSON has, dicts and lists.
converter.register_unstructure_hook_func(lambda t: t is object, _unstructure_object)
converter.register_unstructure_hook_func(_is_other_mapping, _unstructure_mapping)
converter.register_unstructure_hook_func(lambda t: t is tuple, _unstructure_tuple)
#: Decodes; ``converter`` (detailed validation) runs only to explain a failure.
_fast = _configure(cattrs.Converter(detailed_validation=False), _generated_decoders)


def structure(obj: object, cls: type[T]) -> T:
    """Decode JSON-loaded data into ``cls`` (a model, or e.g. ``list[Lora]``).

    Raises:
        ValueError: the data does not fit ``cls``.
    """
    try:
        return _fast.structure(obj, cls)
    except Exception:
        return _explain(obj, cls)


def decoder(cls: type[T]) -> Callable[[object], T]:
    """``structure`` into ``cls`` as a one-argument function, its fast hook resolved now.

    Raises (when called):
        ValueError: the data does not fit ``cls``.
    """
    fast = _fast.get_structure_hook(cls)

    def decode(obj: object) -> T:
        try:
            return fast(obj, cls)  # type: ignore[no-any-return]
        except Exception:
            return _explain(obj, cls)

    return decode


def _explain(obj: object, cls: type[T]) -> T:
    """Decode again with detailed validation, to name every bad field in the error."""
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


def to_json_data(model: object) -> dict[str, object]:
    """A model as JSON-ready data in its wire shape (``Model.to_dict``).

    Only ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None`` appear in
    it, so any JSON encoder (``json``, orjson, FastAPI's) writes it as the API would.
    """
    data: dict[str, object] = converter.unstructure(model)
    return data


def to_json_text(model: object, *, indent: int | None = 2) -> str:
    """A model as JSON text (``Model.to_json``); ``indent=None`` for one compact line."""
    separators = (",", ": ") if indent is not None else (",", ":")
    return json.dumps(to_json_data(model), indent=indent, separators=separators, ensure_ascii=False)


def _without_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_without_none(item) for item in data]
    return data
