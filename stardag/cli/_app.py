"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="stardag",
    help="Declarative DAGs over a content-addressed store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a bug shows a plain traceback; bad input never does
    rich_markup_mode=None,  # plain click help: `stardag --help` answers without importing rich
)

config_app = typer.Typer(name="config", help="Show Stardag's configuration.", no_args_is_help=True)
app.add_typer(config_app)


@app.callback()
def _root() -> None:
    """Declarative DAGs over a content-addressed store.

    TASK is a task id, a unique id prefix, or module:attribute naming a task object
    (imported with the current directory on the import path, as `python -m` does).
    """
