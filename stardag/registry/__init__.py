"""The registry: what was built, from what, by which code, where and when."""

from stardag.registry._db import Registry, default_url
from stardag.registry._db import open_registry as open

__all__ = ["Registry", "default_url", "open"]
