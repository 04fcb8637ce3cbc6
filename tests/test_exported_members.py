"""The public surface: `sd.__all__` is sorted and lists exactly the public names."""

from __future__ import annotations

import types

import stardag as sd


def test_all_lists_exactly_the_public_names() -> None:
    """Every public attribute is in `__all__` and every name in `__all__` exists."""
    public = {
        name
        for name, value in vars(sd).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    # Submodules exported lazily (sd.registry, sd.audit) appear in vars(sd) once imported.
    lazy = {
        name
        for name in sd.__all__
        if name not in vars(sd) or isinstance(vars(sd)[name], types.ModuleType)
    }
    assert public == set(sd.__all__) - {"__version__"} - lazy
    for name in sd.__all__:
        assert getattr(sd, name) is not None


def test_all_is_sorted() -> None:
    """`__all__` is kept sorted."""
    assert list(sd.__all__) == sorted(sd.__all__)


def test_every_error_derives_from_stardag_error() -> None:
    """Each exported exception class is a StardagError."""
    errors = [
        value
        for value in (getattr(sd, name) for name in sd.__all__)
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert errors
    assert all(issubclass(error, sd.StardagError) for error in errors)
