"""The record index: what each action record of a local store says, cached, stat-checked.

gc and verify need a few facts of every record (its dependencies, the blobs its output
needs, its family, its digest); reading and validating 100,000 records costs seconds,
so a local store keeps those facts in one file, `records.idx` at its root, like git's
index. Invariant: a cached entry is used only for the very file it was read from.

- gc trusts an entry while the record file's stat key (inode, size, mtime and ctime in
  ns) is the one it was read under. Any write to a file, a rename over it or a touch
  sets its ctime to the file system's "now", so only a change within the clock tick of
  the read could keep the key: an entry is cached only when its file's ctime is at
  least `RACY` older than the scan's start by the file system's clock (git's "racy
  index" rule, taken at the read rather than at the index's write).
- verify trusts no stat: it reads every record's bytes, and an entry vouches for them
  only when it was written by a verify that checked those exact bytes whole (their
  blake3, `sound`) and they hash the same now. A changed or corrupt record hashes
  differently and is checked in full.
- The file carries the blake3 of its body; a damaged, foreign or unreadable index is
  ignored (every record read afresh) and rewritten. Records not listed are dropped.
  Writing it is best-effort (a read-only store just goes without), by temp then rename.
- A save that changes few rows (the records a scan found too recent to cache, cached
  by the next one) appends them as one line with its own blake3 instead of rewriting
  100,000 rows (~0.45 s); a damaged line is ignored alone, and after `MAX_DELTAS` lines
  the next save rewrites the file whole. Appending is safe against any concurrent
  writer: an appended row is trusted through its stat key like any other, whichever
  file it lands in. (An older reader takes a file with lines appended for damaged.)

Directory outputs are never cached (their manifests are read each time).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
from collections.abc import Container, Iterable, Iterator
from collections.abc import Set as AbstractSet
from stat import S_ISREG
from typing import Any, NamedTuple

from stardag import _hashing
from stardag._errors import StardagError
from stardag.store._backends import SMALL_READ, LocalBackend, read_fd

INDEX_PATH = "records.idx"
RECORDS = "records"
_MAGIC = b"stardag-record-index 2 "
MAX_DELTAS = 8  # lines of changed rows appended before a save rewrites the whole file
# A record file changed less than this after it was read may keep its stat key (a
# coarse file system clock): such records are read afresh every time instead.
RACY = 2.0

StatKey = tuple[int, int, int, int]  # inode, size, mtime ns, ctime ns


class RecordFacts(NamedTuple):
    """What gc and verify need of one sound action record."""

    deps: list[str]  # its static and dynamic dependencies
    blobs: list[str]  # the blobs its output needs
    family: str  # namespace.name of its task
    digest: str
    inline: bool


def family_of(spec: dict[str, Any]) -> str:
    """A task's family from its spec: `namespace.name`, or just the name."""
    namespace, name = spec.get("namespace", ""), spec.get("name", "?")
    return f"{namespace}.{name}" if namespace else str(name)


def stat_key(st: os.stat_result) -> StatKey:
    """The identity of a file's current content as its stat tells it."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class RecordIndex:
    """The cached facts of a local store's records; `save` writes back what changed.

    Rows stay as the file holds them until asked for (gc asks for 100,000): task id ->
    `[inode, size, mtime ns, ctime ns, sound, *facts]`, the facts in `RecordFacts`'
    order, or no facts for an invalid record.
    """

    def __init__(self, backend: LocalBackend, stamp: float) -> None:
        """Load the index of `backend` (empty if there is none or it is unreadable);
        `stamp`: the scan's start by the store's file clock (see `RACY`)."""
        self.backend = backend
        # `_deltas`: lines appended to the file as loaded; -1 if none could be loaded
        self.rows, self._deltas = _load(backend.abspath(INDEX_PATH))
        self._racy_after = int((stamp - RACY) * 1e9)
        self._put: set[str] = set()  # task ids whose rows changed since the load

    def trusted(self, task_id: str, st: os.stat_result) -> list[Any] | None:
        """The row of a record file whose stat key is unchanged since it was read
        (`row_facts` tells what it says)."""
        row = self.rows.get(task_id)
        if (
            row is None
            or len(row) not in (5, 10)
            or row[3] != st.st_ctime_ns
            or row[2] != st.st_mtime_ns
            or row[1] != st.st_size
            or row[0] != st.st_ino
        ):
            return None
        return row

    def vouched(self, task_id: str, sound: str) -> RecordFacts | None:
        """The facts of a record whose bytes (blake3 `sound`) a verify checked whole
        before, else None."""
        row = self.rows.get(task_id)
        if row is None or len(row) != 10 or row[4] != sound:
            return None
        return row_facts(row)

    def sound(self, task_id: str) -> str:
        """The blake3 of the bytes of this record that a verify checked whole, or ""."""
        row = self.rows.get(task_id)
        return "" if row is None else str(row[4])

    def put(self, task_id: str, st: os.stat_result, sound: str, facts: RecordFacts | None) -> None:
        """Cache what the record file read under `st` says (not if it is too recent)."""
        if st.st_ctime_ns < self._racy_after:
            self.rows[task_id] = [*stat_key(st), sound, *(facts or ())]
            self._put.add(task_id)

    def save(self, listed: Iterable[str]) -> None:
        """Write the rows of the `listed` records back, if anything changed (`listed`:
        best a set or a dict's keys, compared as they are)."""
        listed = listed if isinstance(listed, AbstractSet) else set(listed)
        rows = self.rows
        dropped = rows.keys() - listed
        if not self._put and not dropped:
            return
        changes: dict[str, list[Any] | None] = {t: rows[t] for t in self._put if t in listed}
        changes.update(dict.fromkeys(dropped))  # None: the row is dropped
        for task_id in dropped:
            del rows[task_id]
        with contextlib.suppress(StardagError, OSError):  # a cache: never worth a failure
            if 0 <= self._deltas < MAX_DELTAS and len(changes) * 4 <= len(rows):
                _append(self.backend.abspath(INDEX_PATH), changes)
                self._deltas += 1
            else:
                data = _compact(rows)
                head = _MAGIC + _hashing.digest_bytes(data).encode() + b"\n"
                self.backend.put_bytes(INDEX_PATH, head + data)
                self._deltas = 0
        self._put.clear()


def row_facts(row: list[Any]) -> RecordFacts | None:
    """What a row says its record says; None for an invalid record."""
    if len(row) == 5:
        return None
    return tuple.__new__(RecordFacts, row[5:])  # the fields in order, as RecordFacts(*row[5:])


# -- the file ----------------------------------------------------------------------------------
def _load(path: str) -> tuple[dict[str, list[Any]], int]:
    """The rows of an index file with its appended lines applied, and how many lines
    were appended; ({}, -1) if it is missing or its body is damaged."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}, -1
    end = data.find(b"\n")
    stop = data.find(b"\n", end + 1) if end >= 0 else -1
    stop = len(data) if stop < 0 else stop
    head = data[: max(end, 0)]
    body = memoryview(data)[end + 1 : stop]  # not a copy: the body is tens of MB at scale
    # Compared as bytes: a damaged head that is not UTF-8 is just another mismatch.
    if not head.startswith(_MAGIC) or head[len(_MAGIC) :] != _hashing.digest_bytes(body).encode():
        return {}, -1
    try:
        rows = json.loads(codecs.decode(body, "utf-8"))
    except ValueError:
        return {}, -1
    if type(rows) is not dict:
        return {}, -1
    lines = data[stop + 1 :].split(b"\n") if stop < len(data) else []
    for line in lines:
        _apply(rows, line)
    return rows, len(lines)


def _apply(rows: dict[str, list[Any]], line: bytes) -> None:
    """Apply one appended line of changed rows, unless it is damaged (then it is ignored:
    its records are read afresh)."""
    digest, _, data = line.partition(b" ")
    if digest != _hashing.digest_bytes(data).encode():
        return
    try:
        changes = json.loads(data)
    except ValueError:
        return
    if type(changes) is not dict:
        return
    for task_id, row in changes.items():
        if type(row) is list:
            rows[task_id] = row
        else:
            rows.pop(task_id, None)


def _compact(rows: dict[str, Any]) -> bytes:
    return json.dumps(rows, separators=(",", ":")).encode()


def _append(path: str, changes: dict[str, list[Any] | None]) -> None:
    """Append one line of changed rows (None: dropped) to an existing index file."""
    data = _compact(changes)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # not O_CREAT: a line alone is no index
    try:
        os.write(fd, b"\n" + _hashing.digest_bytes(data).encode() + b" " + data)
    finally:
        os.close(fd)


# -- listing a local store's records ------------------------------------------------------------
def record_files(
    backend: LocalBackend, known: Container[str] = ()
) -> Iterator[tuple[str, os.stat_result]]:
    """Every record file of a local store with its stat, without reading any (names of
    the task ids in `known` were checked before, when they were read)."""
    for folder, prefix in _folders(backend):
        try:
            for name in os.listdir(folder):
                task_id = prefix + name[:-5]
                if task_id not in known and not _record_name(name, task_id):
                    continue
                try:
                    st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the listing
                if S_ISREG(st.st_mode):
                    yield task_id, st
        finally:
            os.close(folder)


def scan_files(backend: LocalBackend) -> Iterator[tuple[str, os.stat_result, bytes]]:
    """Every record file of a local store, in task id order: its task id, its stat
    (taken before the read, so a change during the read shows as a later stat) and
    its bytes."""
    for folder, prefix in _folders(backend):
        try:
            yield from _scan_folder(folder, prefix)
        finally:
            os.close(folder)


def read_files(backend: LocalBackend, known: Container[str] = ()) -> Iterator[tuple[str, bytes]]:
    """Every record file of a local store, in task id order, with its bytes: `scan_files`
    without the stats (verify judges records by their bytes alone; names of the task
    ids in `known` were checked before)."""
    for folder, prefix in _folders(backend):
        try:
            for name in sorted(os.listdir(folder)):
                task_id = prefix + name[:-5]
                if task_id not in known and not _record_name(name, task_id):
                    continue
                data = _read_at(folder, name)
                if data is not None:
                    yield task_id, data
        finally:
            os.close(folder)


def _read_at(folder: int, name: str) -> bytes | None:
    """The bytes of a file in an open folder; None if it is gone or not a file."""
    try:  # non-blocking: a FIFO under a record's name must not hang the scan
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, SMALL_READ)
        return data if len(data) < SMALL_READ else data + read_fd(fd)
    except OSError:  # a folder or other non-file under a record's name
        return None
    finally:
        os.close(fd)


def read_file(backend: LocalBackend, task_id: str) -> tuple[os.stat_result, bytes] | None:
    """One record file's stat (taken before the read) and bytes; None if it is gone."""
    path = backend.abspath(f"{RECORDS}/{task_id[:2]}/{task_id[2:]}.json")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.fstat(fd), read_fd(fd)
    finally:
        os.close(fd)


def _folders(backend: LocalBackend) -> Iterator[tuple[int, str]]:
    """Each fan-out folder of the records, opened (the caller closes it), with its name."""
    try:
        with os.scandir(backend.abspath(RECORDS)) as entries:
            folders = [e for e in entries if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for entry in sorted(folders, key=lambda e: e.name):
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            continue
        yield fd, entry.name


def _scan_folder(folder: int, prefix: str) -> Iterator[tuple[str, os.stat_result, bytes]]:
    for name in sorted(os.listdir(folder)):
        task_id = prefix + name[:-5]
        if not _record_name(name, task_id):
            continue
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=folder)
        except FileNotFoundError:
            continue  # deleted since the listing
        try:
            st = os.fstat(fd)
            if not S_ISREG(st.st_mode):
                continue
            data = read_fd(fd)
        finally:
            os.close(fd)
        yield task_id, st, data


def _record_name(name: str, task_id: str) -> bool:
    """Whether a file name in a fan-out folder is that of a record (`<id[2:]>.json`)."""
    return len(name) == 67 and name[-5:] == ".json" and _hashing.is_hex_key(task_id)
