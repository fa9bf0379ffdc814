"""The public namespace: one flat, sorted ``__all__`` of names that really exist."""

from __future__ import annotations

import aurous_async


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_unique() -> None:
    """``__all__`` is sorted (as ruff keeps it) and lists every name once."""
    names = aurous_async.__all__
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_isort_style)


def test_all_lists_every_public_name() -> None:
    """Every public attribute of the package is in ``__all__``, and nothing else is."""
    public = {
        name
        for name in vars(aurous_async)
        # ``isidentifier``: pytest's assertion rewriting of a plugin's package adds
        # ``@py_builtins``-style names to its modules.
        if not name.startswith("_")
        and name.isidentifier()
        and name not in ("annotations", "logging")
    }
    submodules = {"models", "testing", "webhooks"}
    assert public - submodules - {"__version__"} == set(aurous_async.__all__) - {"__version__"}


def test_every_exported_name_exists_and_is_public() -> None:
    """Every name of ``__all__`` is importable, and none is private."""
    for name in aurous_async.__all__:
        assert hasattr(aurous_async, name), name
        assert not name.startswith("_") or name == "__version__", name


def test_public_objects_are_not_re_exported_from_private_module_names() -> None:
    """Public classes and functions are exported at the top level, not only privately."""
    members = {
        name
        for name, value in vars(aurous_async).items()
        if not name.startswith("_")
        and callable(value)
        and not isinstance(value, type(aurous_async))
    }
    assert members <= set(aurous_async.__all__)


def test_core_surface_is_exported() -> None:
    """The client, its config, the error tree, the models and the version are public."""
    for name in (
        "AsyncAurous",
        "RetryPolicy",
        "Limits",
        "Timeouts",
        "API_VERSION",
        "AurousError",
        "APIStatusError",
        "OutcomeUnknownError",
        "InvalidParameterError",
        "EventLoopMismatchError",
        "FleetUnavailableError",
        "RateLimitQueueTimeoutError",
        "Generation",
        "Estimate",
        "LoraWeight",
        "LoraWeightDict",
        "CharacterAttributesDict",
        "AsyncPager",
        "__version__",
    ):
        assert name in aurous_async.__all__, name
