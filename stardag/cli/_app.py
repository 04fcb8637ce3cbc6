"""The typer application every command module registers on, and how its help reads.

Help reads like classic Unix usage: `stardag lineage [OPTIONS] TASK|DIGEST`,
`[TASK]...` for optional repeated arguments, and `--depth N` or
`--format [tree|mermaid|dot|json]` for option values (each value option names
its metavar), never a type such as `<int range>` or `{TASK}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand

_TYPE = re.compile(r" <([^<>]*)>$")  # typer's value type after an option: " <int range>"


class Command(TyperCommand):
    """A command whose usage line and help name arguments and values plainly."""

    # Typer ships its own copy of click, so parameters are told apart by their kind.
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`[OPTIONS]`, then each argument: `TASK`, `[TASK]`, `TASK...` or `[TASK]...`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_usage(param))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Arguments by name with their help; options with their metavars, not their types."""
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if param.param_type_name == "argument":
                arguments.append((_name(param), getattr(param, "help", None) or ""))
            elif record is not None:
                names = " / ".join(_plain(part, param) for part in record[0].split(" / "))
                options.append((names, record[1]))
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


def _name(param: Any) -> str:
    return str(param.metavar or (param.name or "").upper())


def _plain(names: str, param: Any) -> str:
    """`--depth <int range>` as `--depth N` (an option with a metavar has no type shown)."""
    found = _TYPE.search(names)
    return names if found is None else names[: found.start()] + " " + _value(found[1], param)


def _value(kind: str, param: Any) -> str:
    """An option's value as a metavar: `[a|b]` for choices, `N` for counts, else its name."""
    if "|" in kind:
        return f"[{kind}]"
    if kind.startswith("int"):
        return "N"
    return (param.name or "value").upper()


def _usage(param: Any) -> str:
    name = _name(param)
    name = name if param.required else f"[{name}]"
    return name + "..." if param.nargs != 1 and not name.endswith("...") else name


class Typer(typer.Typer):
    """`typer.Typer` whose commands are `Command`s."""

    def command(
        self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Any], Any]:
        """Register a command (see `typer.Typer.command`), as a `Command`."""
        return super().command(*args, cls=cls or Command, **kwargs)


app = Typer(
    name="stardag",
    help="Declarative DAGs over a content-addressed store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a bug shows a plain traceback; bad input never does
    rich_markup_mode=None,  # plain click help: `stardag --help` answers without importing rich
)

config_app = Typer(name="config", help="Show Stardag's configuration.", no_args_is_help=True)
app.add_typer(config_app)


@app.callback()
def _root() -> None:
    """Declarative DAGs over a content-addressed store.

    TASK is a task id, a unique id prefix, or module:attribute naming a task object
    (imported with the current directory on the import path, as `python -m` does).
    """
