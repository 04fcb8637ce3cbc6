"""The recording process: where a large build's registry rows are made and written.

A build of many short tasks spends about as much of its interpreter's time
making and writing registry rows as running tasks, and under one interpreter
lock the two take turns. Once a build has `PROCESS_AT` tasks, the recorder starts
a process of its own and, as soon as it says it is ready (until then the writer
thread goes on), hands it its `Writer` (what it made and still holds) and from
then on sends it facts, pickled, through a pipe: the build keeps only the turning
of events into facts, and the rows are made and written on another core. A
process that cannot start, or dies before it is ready, changes nothing: the
thread records the whole build.

The invariant: the process writes exactly what the writer thread would have (the
same `RowMaker` and `Writer`, the same slices in the same order), and the build
learns of every failure. The process reports its first failure when the build
ends; a process that dies or cannot be reached is itself a failure that names
the build and says how to restore its rows. It ignores Ctrl-C (the build decides
how to end and says so), and it stops when the build's end of the pipe closes,
even if the building process was killed.

Started as `main()` by `RecordingProcess.spawn`; the protocol is this module's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
from typing import IO, Any

from stardag import _errors
from stardag._errors import RegistryError
from stardag.build._rows import BatchRows, Fact, RowMaker, Writer
from stardag.registry._environment import Environment, GitState
from stardag.registry._lite import LiteRegistry

PROCESS_AT = 2000  # tasks discovered: from here on a build records through a process
READY = b"R"  # the process's first byte: imported, ready to take over
ENV_VAR = "STARDAG_RECORDING_PROCESS"  # "0", "off", "false" or "no": never
_OFF = ("0", "off", "false", "no")
# The process runs isolated (-I) with the build's own module path, so that it imports
# the very `stardag` (and pydantic, blake3) the build runs, whatever set that path.
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from stardag.build._recordproc import main; main()"
)


def wanted(registry: object, discovered: int) -> bool:
    """Whether a build with this registry and this many tasks records through a process."""
    if os.environ.get(ENV_VAR, "").strip().lower() in _OFF:
        return False
    return isinstance(registry, LiteRegistry) and discovered >= PROCESS_AT


class RecordingProcess:
    """The building side of a recording process: it takes the place of a `Writer`."""

    def __init__(self, process: subprocess.Popen[bytes], registry: LiteRegistry, build_id: str):
        self._process = process
        self._registry = registry
        self._build_id = build_id
        self._lost: str | None = None  # why the process can no longer be reached
        self.begun = False

    @classmethod
    def spawn(cls, registry: LiteRegistry, build_id: str) -> RecordingProcess:
        """Start a recording process; it says when it is `ready` to take over.

        Raises `OSError` if it cannot be started.
        """
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the build alone
        )
        return cls(process, registry, build_id)

    def ready(self) -> bool | None:
        """Without waiting: True once it can take over, None if it died first, else False."""
        stdout = self._process.stdout
        assert stdout is not None
        if not select.select([stdout], [], [], 0)[0]:
            return False
        if os.read(stdout.fileno(), 1) == READY:
            return True
        self.abandon()
        return None

    def begin(self, writer: Writer) -> None:
        """Carry on `writer`'s work from here: its rows so far and what still waits."""
        self._send(("begin", self._registry.url, writer.rows, writer.unsent))
        writer.unsent = []
        self.begun = True

    def abandon(self) -> None:
        """Stop a process that never began (EOF ends it); wait for it."""
        stdin = self._process.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):
            stdin.close()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def take(
        self,
        facts: list[Fact],
        extra: BatchRows | None,
        setting: tuple[Environment, GitState] | None,
    ) -> None:
        """Send one slice of facts to be made into rows and written."""
        # As plain tuples: a named tuple pickles through a Python-level call each.
        self._send(("slice", list(map(tuple, facts)), extra, setting))

    def finish(self, forget: bool) -> RegistryError | None:
        """The build ended: wait for the process to write the rest; its first failure."""
        self._send(("end", forget))
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.close()
        except OSError as exc:
            self._lost = self._lost or f"its pipe broke ({exc})"
        try:
            report = pickle.load(stdout)  # noqa: S301  # from our own child, through a pipe
        except (EOFError, pickle.UnpicklingError, OSError):
            report = None
            self._lost = self._lost or "it ended without a report"
        code = self._process.wait()
        stdout.close()
        if self._lost is not None or code != 0:
            return RegistryError(
                f"registry {self._registry.safe_url}: the process recording build "
                f"{self._build_id} failed ({self._lost or 'exit status ' + str(code)}): "
                "some of its runs may be missing; `sd.registry.reindex(root)` restores "
                "task, edge and output rows from the store",
                url=self._registry.safe_url,
            )
        return _error_from(report)

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._lost is not None:
            return
        stdin = self._process.stdin
        assert stdin is not None
        try:
            pickle.dump(message, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except OSError as exc:  # BrokenPipeError: the process is gone
            self._lost = f"its pipe broke ({exc})"


def _report(failure: RegistryError | None) -> tuple[str, str, str | None] | None:
    if failure is None:
        return None
    return type(failure).__name__, str(failure), failure.url


def _error_from(report: tuple[str, str, str | None] | None) -> RegistryError | None:
    """The failure a report names, as the class it was where that class is plain."""
    if report is None:
        return None
    name, message, url = report
    kind = getattr(_errors, name, RegistryError)
    if not (isinstance(kind, type) and issubclass(kind, RegistryError)):
        kind = RegistryError
    if kind.__init__ is not RegistryError.__init__:  # other arguments: the base class
        kind = RegistryError
    return kind(message, url=url)


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The recording process: read the writer, then slices, until the end or EOF."""
    writer: Writer | None = None
    while True:
        try:
            message = pickle.load(stdin)  # noqa: S301  # from the build that started us
        except EOFError:  # the building process is gone: what came is written
            return
        if message[0] == "begin":
            _, url, rows, unsent = message
            writer = _writer(url, rows, unsent)
        elif message[0] == "slice":
            assert writer is not None
            _, facts, extra, setting = message
            writer.take(list(map(Fact._make, facts)), extra, setting)
        else:
            assert writer is not None
            pickle.dump(_report(writer.finish(message[1])), stdout)
            stdout.flush()
            return


def _writer(url: str, rows: RowMaker, unsent: list[BatchRows]) -> Writer:
    from stardag.registry import _lite

    registry = _lite.open_lite(url)
    if registry is None:  # the build opened it as a plain file a moment ago
        raise RegistryError(f"registry {url} could not be opened by the recording process")
    return Writer(registry, rows, unsent)


def main() -> None:
    """The recording process's entry: say it is ready, then serve until the end or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The report goes out on the pipe that was stdout; anything printed goes to stderr.
    report_pipe = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    report_pipe.write(READY)
    report_pipe.flush()
    serve(sys.stdin.buffer, report_pipe)
    report_pipe.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed and reported: skip the interpreter's teardown, which the
    # build waits for (its modules' objects freed one by one: ~50 ms, 3% of a
    # 10,000-task build). SQLite keeps what was committed; the next connection to close
    # checkpoints the log.
    os._exit(0)


if __name__ == "__main__":
    main()
