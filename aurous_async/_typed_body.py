"""Response bodies parsed straight into a model, without the intermediate dict.

``body_parser(cls)`` returns ``parse(body)``. It decodes the body with msgspec into a
Struct that mirrors the model's wire shape (each field typed as the API sends it), then
builds the model from the Struct with generated code. Most bodies take this path, which
costs a fraction of parsing to dicts and then structuring them.

The result must be exactly what the general way gives (``_json.loads`` then
``_wire.decoder(cls)``), or the general way must run instead. So each Struct field is
strict where the general decoder is lenient: a string for a text, timestamp or enum
field, a JSON integer for an ``int``, a JSON boolean for a required flag, an array for
a tuple. A body with anything else (a number spelled as text, an epoch number for a
timestamp) fails the typed pass, and ``parse`` returns ``_json.loads(body)``, plain JSON
data for the general decoder, which gives the lenient result or the worded error. A
field with no strict type (a flag that may be ``{}``, free-form data) is read untyped and
decoded as the general decoder does it. A body that is not UTF-8 goes the general way
too: msgspec checks the fields it reads, not the unknown ones it skips.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
import msgspec

from . import _json
from ._wire import (
    _DECODER_GLOBALS,
    _bind,
    _body_fields,
    _decode_expression,
    _default_expression,
    _enum_members,
    _fast,
    _is_generated_field,
    _structure_bool,
    _structure_datetime,
    _structure_open_enum,
    _structure_str,
    _tuple_item,
    _value_hook,
    define_generated,
)

__all__ = ["body_parser"]

#: A wire type (for the Struct field) and the expression of the model value, from ``v``.
_Typed = tuple[Any, str]


def body_parser(cls: type) -> Callable[[bytes], object]:
    """``parse(body)``: a ``cls`` instance when the body fits the typed pass, else the
    body's JSON data (``_json.loads``) for the general decoder.

    Raises (when called):
        ValueError: the body is not JSON (as ``_json.loads`` raises it).
    """
    parser = _PARSERS.get(cls)
    if parser is None:
        parser = _PARSERS[cls] = _make_parser(cls)
    return parser


_PARSERS: dict[type, Callable[[bytes], object]] = {}


def _make_parser(cls: type) -> Callable[[bytes], object]:
    names: dict[str, object] = {**_DECODER_GLOBALS, "loads": _json.loads}
    try:
        build = _mirror(cls, names)
    except _Unsupported:
        return _json.loads
    decode = _bind(names, "decode", msgspec.json.Decoder(build.struct).decode)
    lines = [
        f"def parse_{cls.__name__}(body):",
        "    if not body.isascii():",
        "        try:",
        "            body.decode()",
        "        except UnicodeDecodeError:",
        "            return loads(body)",
        "    try:",
        f"        return {build.function}({decode}(body))",
        "    except Exception:",
        "        return loads(body)",
    ]
    return _define(lines, f"parse_{cls.__name__}", cls, names)  # type: ignore[return-value]


class _Unsupported(Exception):
    """The model has a field the typed pass does not handle."""


@attrs.frozen
class _Build:
    struct: type[msgspec.Struct]
    function: str  # the global name of ``build(struct) -> model``


def _mirror(cls: type, names: dict[str, object]) -> _Build:
    """The Struct mirroring ``cls`` and the generated function building ``cls`` from it."""
    fields = _body_fields(cls)
    if not attrs.has(cls) or not all(_is_generated_field(field) for field in fields):
        raise _Unsupported(cls)
    if cls in _IN_PROGRESS:  # a model nested in itself
        raise _Unsupported(cls)
    # Reserved now: nested models bind their own names while this one is being made.
    function = _bind(names, f"build_{cls.__name__}", None)
    struct_fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    lines = [f"def {function}(s):"]
    _IN_PROGRESS.add(cls)
    try:
        for field in fields:
            hook, tp, nullable = _value_hook(_fast, field)
            wire, expression = _typed(hook, tp, field.name, names)
            lines += _read(field, nullable, expression, names)
            if not nullable:
                struct_fields.append((field.name, wire))
            elif field.default is attrs.NOTHING:
                struct_fields.append((field.name, wire if wire is Any else wire | None))
            else:  # absent reads as null: both mean the default
                struct_fields.append((field.name, wire if wire is Any else wire | None, None))
    finally:
        _IN_PROGRESS.discard(cls)
    lines += _construct(cls, fields, names)
    try:
        struct = msgspec.defstruct(
            f"{cls.__name__}Wire", struct_fields, kw_only=True, gc=False, frozen=True
        )
    except (TypeError, ValueError) as exc:  # e.g. a field name msgspec reserves
        raise _Unsupported(cls) from exc
    _define(lines, function, cls, names)
    return _Build(struct, function)


_IN_PROGRESS: set[type] = set()


def _read(
    field: attrs.Attribute[Any], nullable: bool, expression: str, names: dict[str, object]
) -> list[str]:
    """Source lines setting ``f_<name>`` from the Struct ``s``."""
    local, value = f"f_{field.name}", f"s.{field.name}"
    null = _default_expression(field, names) if nullable else None
    if expression == "v" and null in (None, "None"):
        return [f"    {local} = {value}"]  # taken as it is, null included
    if null is None:
        return [f"    v = {value}", f"    {local} = {expression}"]
    return [f"    v = {value}", f"    {local} = {null} if v is None else {expression}"]


def _typed(hook: Any, tp: Any, name: str, names: dict[str, object]) -> _Typed:
    """The wire type of a non-null value and its model value as an expression of ``v``.

    Where no strict wire type stands for the value, it is read untyped (``Any``) and
    decoded as the general decoder does it.
    """
    if hook is _structure_str:
        return str, "v"
    if hook is cattrs.BaseConverter._structure_call and tp in (int, float):
        # A JSON integer in a float field is read as its float, as ``float(v)`` does.
        return tp, "v"
    if hook is _structure_bool:
        return bool, "v"
    if hook is _structure_datetime:
        return str, "parse_datetime(v)"
    if hook is _structure_open_enum:
        members = _bind(names, f"_{name}_members", _enum_members(tp))
        enum = _bind(names, f"_{name}_type", tp)
        return str, f"{members}[v] if v in {members} else open_enum(v, {enum})"
    item = _tuple_item(tp)
    tuple_hook = getattr(hook, "__func__", None) is cattrs.BaseConverter._structure_tuple
    if item is not None and tuple_hook:
        item_wire, each = _typed(_fast.get_structure_hook(item), item, f"{name}_item", names)
        if item_wire is not Any:
            array = tuple.__class_getitem__((item_wire, ...))
            if each == "v":
                return array, "v"
            convert = _bind(names, f"_{name}_item", eval(f"lambda v: {each}", names))
            return array, f"tuple([{convert}(item) for item in v])"
    if attrs.has(tp):
        try:
            nested = _mirror(tp, names)
        except _Unsupported:
            pass
        else:
            return nested.struct, f"{nested.function}(v)"
    return Any, _decode_expression(_fast, "v", hook, tp, name, names)


def _construct(
    cls: type, fields: list[attrs.Attribute[Any]], names: dict[str, object]
) -> list[str]:
    """Source lines returning the model built from the ``f_<name>`` locals.

    A slotted model with no validator, converter or init hook is filled slot by slot,
    as ``copy`` and ``pickle`` do: a frozen class's ``__init__`` sets each field through
    ``object.__setattr__``, which costs several times as much. Fields that are not read
    from the body (response metadata) get their defaults.
    """
    passed = {field.name for field in fields}
    every = attrs.fields(cls)
    slots = _member_slots(cls, every)
    if slots is None:
        arguments = ", ".join(
            f"{field.alias}=f_{field.name}" for field in every if field.name in passed
        )
        return [f"    return {_bind(names, 'model', cls)}({arguments})"]
    lines = [f"    o = new({_bind(names, 'model', cls)})"]
    names.setdefault("new", object.__new__)
    for field in every:
        setter = _bind(names, f"_set_{field.name}", slots[field.name])
        if field.name in passed:
            lines.append(f"    {setter}(o, f_{field.name})")
        else:
            lines.append(f"    {setter}(o, {_default_expression(field, names)})")
    lines.append("    return o")
    return lines


def _member_slots(cls: type, fields: tuple[attrs.Attribute[Any], ...]) -> dict[str, Any] | None:
    """Each field's slot setter, if ``cls`` may be built without its ``__init__``."""
    if any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")):
        return None
    if any(field.validator is not None or field.converter is not None for field in fields):
        return None
    if any(not field.init and field.default is attrs.NOTHING for field in fields):
        return None
    default: Any
    for field in fields:
        default = field.default
        if isinstance(default, attrs.Factory) and default.takes_self:  # type: ignore[arg-type]
            return None
    slots: dict[str, Any] = {}
    for klass in cls.__mro__:
        for slot in klass.__dict__.get("__slots__", ()):
            if slot not in ("__weakref__", "__dict__") and slot not in slots:
                slots[slot] = inspect.getattr_static(klass, slot)
    if set(slots) != {field.name for field in fields}:
        return None  # e.g. a cached hash, which ``__init__`` resets
    if not all(isinstance(slot, types.MemberDescriptorType) for slot in slots.values()):
        return None
    return {name: slot.__set__ for name, slot in slots.items()}


def _define(lines: list[str], function: str, cls: type, names: dict[str, object]) -> object:
    filename = f"<aurous_async._typed_body {function} for {cls.__module__}.{cls.__qualname__}>"
    return define_generated(lines, filename, names, function)
