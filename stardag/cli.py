"""The `stardag` command line (typer). Heavy imports stay inside commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="stardag",
    help="Declarative DAGs over a content-addressed store.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Declarative DAGs over a content-addressed store."""


@app.command()
def version() -> None:
    """Print the Stardag version."""
    from stardag._version import __version__

    typer.echo(__version__)


def main() -> None:
    """Entry point of the console script."""
    app()
