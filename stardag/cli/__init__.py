"""The `stardag` command line (typer + rich): build, inspect, gc, verify and audit.

Each group of commands lives in a small module that registers on `app`; the
commands are thin wrappers over library functions, and import them (and rich,
SQLAlchemy, the store) inside the command, so `stardag --help` stays fast.

Bad input (an unknown task, an ambiguous prefix, a malformed `module:attr`, a
registry that does not exist yet) is one line on stderr and exit code 2; a
failed build or a damaged store is exit code 1.
"""

from __future__ import annotations

import importlib

from stardag.cli._app import app

__all__ = ["app", "main"]

# Each module registers its commands on `app` when imported; `--help` lists them in
# this order.
COMMAND_MODULES = (
    "_build",
    "_inspect",
    "_lineage",
    "_history",
    "_pins",
    "_gc",
    "_verify",
    "_audit",
    "_config",
    "_remote",
    "_ui",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"stardag.cli.{_module}")


@app.command()
def version() -> None:
    """Print the Stardag version."""
    from stardag._version import __version__

    print(__version__)


def main() -> None:
    """Entry point of the console script."""
    app()
