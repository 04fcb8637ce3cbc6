"""`stardag remote add/list/remove/key/trust/untrust/keys`, `stardag push` and `stardag pull`."""

from __future__ import annotations

from typing import Annotated

import typer

from stardag.cli._app import Typer, app
from stardag.cli._common import JsonFlag, command, console, fail, print_json, size

remote_app = Typer(
    name="remote",
    help="Configure remote caches (shared stores) and whose signed records you use.",
    no_args_is_help=True,
)
app.add_typer(remote_app)

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote",
        "-r",
        metavar="NAME|URL",
        help="A configured remote's name, or a URL (default: the active one).",
    ),
]
TASKS_HELP = (
    "Task ids, unique id prefixes, or module:attribute (a task or a list of tasks); "
    "a URL here names the remote."
)


@remote_app.command("add")
@command
def add(
    name: Annotated[str, typer.Argument(help="A short name for the remote.")],
    url: Annotated[str, typer.Argument(help="Its store root: a path or an fsspec URL (s3://...).")],
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="Use its records unsigned, and load pickled outputs from it (unpickling runs "
            "code): only if you trust everyone who can write to it.",
        ),
    ] = False,
    write_through: Annotated[
        bool, typer.Option("--write-through", help="Builds push each output as it is produced.")
    ] = False,
    default: Annotated[
        bool | None,
        typer.Option("--default/--no-default", help="Make it the active remote (the first is)."),
    ] = None,
) -> None:
    """Add or reconfigure a remote cache."""
    from stardag._errors import RemoteError
    from stardag.remote import _config as _remotes_config

    try:
        url = _remotes_config.checked_url(url)
    except RemoteError as exc:
        fail(str(exc))  # bad input: exit 2
    remote = _remotes_config.add(
        name, url, trusted=trusted, write_through=write_through, default=default
    )
    console().print(f"remote [bold]{remote.name}[/bold] -> {remote.url}")


@remote_app.command("remove")
@command
def remove(name: Annotated[str, typer.Argument(help="The remote to forget.")]) -> None:
    """Forget a remote (the store behind it is left alone)."""
    from stardag.remote import _config as _remotes_config

    removed = _remotes_config.remove(name)
    console().print(f"removed remote [bold]{removed.name}[/bold] ({removed.url})")


@remote_app.command("list")
@command
def list_remotes(as_json: JsonFlag = False) -> None:
    """Every configured remote; `*` marks the active one (STARDAG_REMOTE overrides)."""
    from stardag.remote import _config as _remotes_config

    config = _remotes_config.load()
    active = _remotes_config.active()
    rows = [
        {
            "name": r.name,
            "url": r.url,
            "trusted": r.trusted,
            "write_through": r.write_through,
            "active": active is not None and active.url == r.url,
        }
        for r in config.remotes.values()
    ]
    if active is not None and not any(row["active"] for row in rows):
        rows.append(
            {
                "name": active.name,
                "url": active.url,
                "trusted": active.trusted,
                "write_through": active.write_through,
                "active": True,
            }
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print("no remotes (stardag remote add NAME URL adds one)")
    names = max((len(str(row["name"])) for row in rows), default=0)
    urls = max((len(str(row["url"])) for row in rows), default=0)
    for row in rows:
        flags = ", ".join(f for f in ("trusted", "write_through") if row[f])
        flags = f"({flags})" if flags else ""
        mark = "*" if row["active"] else " "
        line = f"{mark} {row['name']:<{names}}  {row['url']:<{urls}}  {flags}"
        console().print(line.rstrip(), highlight=False, markup=False)


@remote_app.command("key")
@command
def key() -> None:
    """Print your public key (made on first use), for others to `stardag remote trust`."""
    from stardag.remote import _keys

    print(_keys.own_public_key(create=True))


@remote_app.command("trust")
@command
def trust(
    public_key: Annotated[
        str, typer.Argument(metavar="KEY", help="NAME:BASE64, as `stardag remote key` prints it.")
    ],
) -> None:
    """Use remote records signed by this key (your own is always trusted)."""
    from stardag.remote import _keys

    parsed = _keys.parse_public_key(public_key)
    added = _keys.trust(parsed)
    console().print(
        f"{'trusting' if added else 'already trusted:'} {parsed}", highlight=False, markup=False
    )


@remote_app.command("untrust")
@command
def untrust(
    public_key: Annotated[str, typer.Argument(metavar="KEY", help="A key `remote keys` lists.")],
) -> None:
    """Stop using remote records signed by this key."""
    from stardag.remote import _keys

    parsed = _keys.parse_public_key(public_key)
    if parsed == _keys.own_public_key():
        fail("that is your own key: records you push are always trusted")
    if not _keys.untrust(parsed):
        fail(f"{parsed.name}'s key {parsed} is not trusted (`stardag remote keys` lists them)")
    console().print(f"no longer trusting {parsed}", highlight=False, markup=False)


@remote_app.command("keys")
@command
def keys(as_json: JsonFlag = False) -> None:
    """The public keys whose signed records you use; `*` marks your own."""
    from stardag.remote import _keys

    own = _keys.own_public_key()
    rows = [{"key": str(k), "name": k.name, "own": k == own} for k in _keys.trusted_keys()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print("no keys yet (`stardag remote key` makes yours)")
    for row in rows:
        mark = "*" if row["own"] else " "
        console().print(f"{mark} {row['key']}", highlight=False, markup=False)


@app.command()
@command
def push(
    tasks: Annotated[list[str] | None, typer.Argument(metavar="TASK", help=TASKS_HELP)] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Push every output in the local store.")
    ] = False,
    remote: RemoteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload the closure of tasks: the blobs the remote lacks, then their records."""
    from stardag.remote._sharing import push as push_closure

    references, remote = _split_remote(tasks or [], remote)
    if not references and not every:
        fail("name the tasks to push, or --all")
    ids = None if every else [i for ref in references for i in _local_task_ids(ref)]
    report = push_closure(ids, remote=remote)
    _report(
        report.__dict__, as_json, "sent", report.blobs_sent, report.bytes_sent, report.records_sent
    )


@app.command()
@command
def pull(
    tasks: Annotated[list[str], typer.Argument(metavar="TASK", help=TASKS_HELP)],
    remote: RemoteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Download the closure of tasks, verified, and record their lineage in the registry."""
    from stardag.maintenance._resolve import resolve_task_id
    from stardag.remote import _config as _remotes_config
    from stardag.remote._sharing import pull as pull_closure
    from stardag.store._store import store_for

    references, remote = _split_remote(tasks, remote)
    if not references:
        fail("name the tasks to pull")
    source = store_for(_remotes_config.resolve(remote).url)
    ids = [resolve_task_id(ref, None, [source]) for ref in references]
    report = pull_closure(ids, remote=remote)
    data = {k: v for k, v in report.__dict__.items() if k != "records"}
    _report(
        data, as_json, "fetched", report.blobs_fetched, report.bytes_fetched, report.records_fetched
    )


def _split_remote(arguments: list[str], remote: str | None) -> tuple[list[str], str | None]:
    """A URL among the TASK arguments names the remote (`stardag push s3://bucket/root`)."""
    urls = [a for a in arguments if "://" in a]
    if len(urls) > 1 or (urls and remote is not None):
        fail("name one remote: a URL argument or --remote, not both")
    return [a for a in arguments if "://" not in a], urls[0] if urls else remote


def _local_task_ids(reference: str) -> list[str]:
    from stardag._errors import RegistryNotFoundError
    from stardag.cli._common import registry, task_ids

    try:
        known = registry()
    except RegistryNotFoundError:
        known = None
    return task_ids(reference, known)


def _report(
    data: dict[str, object], as_json: bool, verb: str, blobs: int, count: int, records: int
) -> None:
    if as_json:
        print_json(data)
        return
    line = (
        f"{data['remote']}: {data['tasks']} tasks, {verb} {blobs} blobs ({size(count)}) "
        f"and {records} records"
    )
    missing = data.get("missing") or ()
    if missing:
        line += f"; {len(missing)} upstream tasks have no output to move"  # type: ignore[arg-type]
    untrusted = data.get("untrusted")
    if isinstance(untrusted, tuple) and untrusted:
        line += f"; {len(untrusted)} upstream records no key you trust signed were left there"
    console().print(line, highlight=False)
