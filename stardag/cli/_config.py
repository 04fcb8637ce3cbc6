"""`stardag config show`: the effective roots, registry and settings, and their sources."""

from __future__ import annotations

from stardag.cli._app import config_app
from stardag.cli._common import JsonFlag, command, console, print_json


@config_app.command("show")
@command
def show(as_json: JsonFlag = False) -> None:
    """Every setting: its value now and where it came from."""
    from stardag.maintenance._settings import effective

    found = effective()
    if as_json:
        print_json([s.__dict__ for s in found])
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for setting in found:
        table.add_row(setting.name, setting.value or "-", setting.source)
    console().print(table)
