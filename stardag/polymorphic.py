"""Polymorphic models by the released stardag's module path: `from stardag.polymorphic import ...`.

The invariant: this module only re-exports; the classes live in `stardag.task`.
"""

from stardag.task._fields import SubClass
from stardag.task._polymorphic import Polymorphic, PolymorphicRoot, StardagBaseModel

__all__ = ["Polymorphic", "PolymorphicRoot", "StardagBaseModel", "SubClass"]
