"""What an integration raises when its third-party package is not installed.

The one rule every integration keeps: a missing package is an
`OptionalDependencyError` (a `StardagError` and an `ImportError`) whose message
names the `pip install 'stardag[...]'` that brings it, never a bare
`ModuleNotFoundError` from deep inside.
"""

from __future__ import annotations

from stardag._errors import OptionalDependencyError


def missing_extra(package: str, extra: str, cause: ImportError) -> OptionalDependencyError:
    """The error for an integration whose `package` (from `stardag[extra]`) is missing."""
    return OptionalDependencyError(
        f"stardag.integration.{extra} needs the {package!r} package, which is not "
        f"installed: pip install 'stardag[{extra}]' ({cause})",
        package=package,
    )
