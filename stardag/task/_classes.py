"""The class registry: (namespace, name) -> task class, and module namespaces.

This is what lets `model_validate_json` rebuild polymorphic upstream tasks, and
what makes two classes claiming one (namespace, name) a clear error.
"""

from __future__ import annotations

from typing import Any

from stardag._errors import TaskClassConflictError, TaskDefinitionError

# The table holds task classes; it is typed loosely so that it sits below the task base
# class it serves (`stardag.task._base` registers every subclass here).
TaskClass = type[Any]

_CLASSES: dict[tuple[str, str], TaskClass] = {}
_MODULE_NAMESPACES: dict[str, str] = {}


def namespace(namespace: str, scope: str) -> None:
    """Give every task class defined in module `scope` (and its submodules) a namespace.

    Call it at the top of a module, before the classes: `sd.namespace("ml", __name__)`.
    """
    _MODULE_NAMESPACES[scope] = namespace


def auto_namespace(scope: str) -> None:
    """Use the module's import path as the namespace of its task classes."""
    _MODULE_NAMESPACES[scope] = scope


def namespace_for_module(module: str) -> str:
    """The namespace registered for a module or its nearest parent, else ``""``."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = _MODULE_NAMESPACES.get(".".join(parts[:end]))
        if found is not None:
            return found
    return ""


def register(cls: TaskClass, namespace: str, name: str) -> None:
    """Register a concrete task class; a redefinition in the same module replaces it."""
    key = (namespace, name)
    existing = _CLASSES.get(key)
    if existing is not None and existing is not cls and not _same_origin(existing, cls):
        raise TaskClassConflictError(
            f"task class {_origin(cls)} claims namespace={namespace!r} name={name!r}, "
            f"which {_origin(existing)} already has. Give one of them another name "
            "(name_override=...) or namespace (__namespace__ = ... or sd.namespace(...))."
        )
    _CLASSES[key] = cls


def resolve(namespace: str, name: str) -> TaskClass:
    """The task class registered under (namespace, name)."""
    try:
        return _CLASSES[(namespace, name)]
    except KeyError:
        raise TaskDefinitionError(
            f"no task class is registered as namespace={namespace!r} name={name!r}; "
            "import the module that defines it first"
        ) from None


def registered() -> dict[tuple[str, str], TaskClass]:
    """A copy of every registered (namespace, name) and its class."""
    return dict(_CLASSES)


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _same_origin(a: type, b: type) -> bool:
    # Re-running a module (a notebook cell, importlib.reload, a doc block) or a
    # test's local class of the same name redefines a class; that is a
    # replacement, not a conflict. Module and class name decide (not the
    # qualified name: `test_a.<locals>.Fit` and `test_b.<locals>.Fit` are one task).
    return (a.__module__, a.__name__) == (b.__module__, b.__name__)
