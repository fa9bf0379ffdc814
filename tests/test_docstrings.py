"""Every public name is documented: the reference site is built from these docstrings."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from types import ModuleType
from typing import get_origin

import pytest

import aurous_async
import aurous_async.testing
import aurous_async.webhooks
from aurous_async._resources.balance import Balance
from aurous_async._resources.characters import CharacterRefs, Characters, CharacterUploads
from aurous_async._resources.files import Files
from aurous_async._resources.images import Images
from aurous_async._resources.loras import Loras, VideoLoras
from aurous_async._resources.pricing import Pricing
from aurous_async._resources.team import Team
from aurous_async._resources.usage import Usage, UsageEvents
from aurous_async._resources.videos import Videos
from aurous_async._resources.webhook_endpoints import WebhookEndpoints

PUBLIC_MODULES = [aurous_async, aurous_async.testing, aurous_async.webhooks]
# The client's resource attributes (client.images, ...): public through the client.
RESOURCES = [
    Images,
    Videos,
    Loras,
    VideoLoras,
    Files,
    Characters,
    WebhookEndpoints,
    Balance,
    Team,
    Pricing,
    Usage,
    CharacterUploads,  # client.characters.uploads
    CharacterRefs,  # client.characters.refs
    UsageEvents,  # client.usage.events
]


def public_objects(module: ModuleType) -> Iterator[tuple[str, object]]:
    for name in module.__all__:
        obj = getattr(module, name)
        # A type alias (``Callable[...]``) is no class, though Python 3.10 says it is.
        is_class = inspect.isclass(obj) and get_origin(obj) is None
        if is_class or inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj


def members(cls: type) -> Iterator[tuple[str, object]]:
    """Public methods and properties defined by ``cls`` or a base of the package."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("aurous_async"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            target = value.fget if isinstance(value, property) else value
            target = getattr(target, "__func__", target)
            if inspect.isfunction(target):
                yield f"{cls.__name__}.{name}", target


def undocumented() -> list[str]:
    found = []
    classes: list[tuple[str, object]] = [(c.__name__, c) for c in RESOURCES]
    for module in PUBLIC_MODULES:
        classes += public_objects(module)
    for qualname, obj in classes:
        if not (inspect.getdoc(obj) or "").strip():
            found.append(qualname)
        if inspect.isclass(obj):
            found += [name for name, f in members(obj) if not (f.__doc__ or "").strip()]
    return sorted(set(found))


def test_every_public_class_function_method_and_property_has_a_docstring() -> None:
    """No public object of aurous_async, .testing, .webhooks or a resource lacks a docstring."""
    assert undocumented() == []


@pytest.mark.parametrize(
    ("qualname", "function"),
    [
        (qualname, obj)
        for module in PUBLIC_MODULES
        for qualname, obj in public_objects(module)
        if inspect.isfunction(obj)
    ],
)
def test_every_public_function_names_each_parameter(qualname: str, function: object) -> None:
    """A public function's docstring mentions every one of its parameters."""
    assert callable(function)
    doc = inspect.getdoc(function) or ""
    missing = [p for p in inspect.signature(function).parameters if p not in doc]
    assert missing == [], f"{qualname}: {missing}"
