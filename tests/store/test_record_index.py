"""The record index: cached facts of a local store's records, trusted only for the same file."""

from __future__ import annotations

import os
from pathlib import Path

from blake3 import blake3

from stardag.store._backends import LocalBackend
from stardag.store._index import (
    INDEX_PATH,
    MAX_DELTAS,
    RACY,
    RecordFacts,
    RecordIndex,
    read_file,
    record_files,
    row_facts,
)
from stardag.store._record import ActionRecord
from stardag.store._store import Store, record_path

IDS = [blake3(bytes([i])).hexdigest() for i in range(3)]


def _store(tmp_path: Path) -> tuple[Store, LocalBackend]:
    store = Store(str(tmp_path / "store"))
    for task_id in IDS:
        store.put_record(_record(task_id, deps=[]))
    assert isinstance(store.backend, LocalBackend)
    return store, store.backend


def _record(task_id: str, deps: list[str]) -> ActionRecord:
    return ActionRecord(
        task_id=task_id,
        spec={"name": "t", "params": {}},
        digest=blake3(b"x").hexdigest(),
        serializer="json",
        size_raw=1,
        size_stored=1,
        created="2026-01-01T00:00:00+00:00",
        requires=deps,
        inline="eA==",
    )


def _facts(task_id: str) -> RecordFacts:
    return RecordFacts([task_id], [], "t", blake3(b"x").hexdigest(), True)


def _later(backend: LocalBackend) -> float:
    """A scan stamp far enough after every file's ctime that none is racy."""
    return max(st.st_ctime for _, st in record_files(backend)) + RACY + 1


def test_a_saved_entry_is_trusted_while_its_file_is_unchanged(tmp_path: Path) -> None:
    """An entry written by one scan is trusted by the next for the same file, stat for stat."""
    _, backend = _store(tmp_path)
    index = RecordIndex(backend, _later(backend))
    for task_id, st in record_files(backend):
        index.put(task_id, st, "", _facts(task_id))
    index.save(IDS)
    again = RecordIndex(backend, _later(backend))
    for task_id, st in record_files(backend):
        row = again.trusted(task_id, st)
        assert row is not None and row_facts(row) == _facts(task_id)


def test_a_record_rewritten_or_touched_is_not_trusted(tmp_path: Path) -> None:
    """A record published again (a rename), or changed in place with its mtime moved,
    has another stat: its entry is not trusted and the file is read again."""
    store, backend = _store(tmp_path)
    index = RecordIndex(backend, _later(backend))
    for task_id, st in record_files(backend):
        index.put(task_id, st, "", _facts(task_id))
    index.save(IDS)
    store.put_record(_record(IDS[0], deps=[IDS[1]]))  # rewritten: a new file
    path = Path(backend.abspath(record_path(IDS[1])))
    old = path.stat()
    with open(path, "r+b") as f:  # in place, same size, mtime moved on by a second
        f.write(f.read())
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns + 10**9))
    again = RecordIndex(backend, _later(backend))
    trusted = {t for t, st in record_files(backend) if again.trusted(t, st) is not None}
    assert trusted == {IDS[2]}


def test_a_record_read_within_the_racy_margin_is_not_cached(tmp_path: Path) -> None:
    """A file whose ctime is less than RACY before the scan began could change again
    without changing its stat: it is read afresh each time, never cached."""
    _, backend = _store(tmp_path)
    task_id, st = next(iter(record_files(backend)))
    index = RecordIndex(backend, st.st_ctime + RACY / 2)
    index.put(task_id, st, "", _facts(task_id))
    assert task_id not in index.rows


def test_deleted_records_leave_the_index_and_a_damaged_index_is_ignored(tmp_path: Path) -> None:
    """Only listed records are saved; an index whose checksum fails is read as empty."""
    store, backend = _store(tmp_path)
    index = RecordIndex(backend, _later(backend))
    for task_id, st in record_files(backend):
        index.put(task_id, st, "", _facts(task_id))
    store.delete_record(IDS[0])
    index.save(t for t, _ in record_files(backend))
    assert set(RecordIndex(backend, _later(backend)).rows) == set(IDS[1:])
    path = Path(backend.abspath(INDEX_PATH))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # a flipped bit in the body
    path.write_bytes(bytes(data))
    assert RecordIndex(backend, _later(backend)).rows == {}
    path.write_bytes(b"stardag-record-index 2 \xff\xfe\n{}")  # a head that is not UTF-8
    assert RecordIndex(backend, _later(backend)).rows == {}


def test_vouched_needs_the_bytes_a_verify_checked(tmp_path: Path) -> None:
    """verify's trust is in content: the blake3 of the bytes it checked, not the stat."""
    _, backend = _store(tmp_path)
    index = RecordIndex(backend, _later(backend))
    read = read_file(backend, IDS[0])
    assert read is not None
    st, data = read
    sound = blake3(data).hexdigest()
    index.put(IDS[0], st, sound, _facts(IDS[0]))
    assert index.vouched(IDS[0], sound) == _facts(IDS[0])
    assert index.vouched(IDS[0], blake3(data + b" ").hexdigest()) is None
    assert index.vouched(IDS[1], sound) is None


def _indexed(tmp_path: Path, count: int) -> tuple[Store, LocalBackend, Path]:
    """A store of `count` records, all in a freshly written index file."""
    store = Store(str(tmp_path / "store"))
    for i in range(count):
        task_id = blake3(b"many" + bytes([i])).hexdigest()
        store.put_record(_record(task_id, deps=[]))
    assert isinstance(store.backend, LocalBackend)
    backend = store.backend
    index = RecordIndex(backend, _later(backend))
    for task_id, st in record_files(backend):
        index.put(task_id, st, "", _facts(task_id))
    index.save(t for t, _ in record_files(backend))
    return store, backend, Path(backend.abspath(INDEX_PATH))


def test_a_few_changed_rows_are_appended_and_read_back(tmp_path: Path) -> None:
    """A save that changes few rows appends them (and drops) as a line; a load applies it."""
    store, backend, path = _indexed(tmp_path, 12)
    before = path.read_bytes()
    index = RecordIndex(backend, _later(backend))
    task_id, st = next(iter(record_files(backend)))
    index.put(task_id, st, "f" * 64, _facts(task_id))
    gone = sorted(index.rows)[-1]
    store.delete_record(gone)
    index.save(t for t, _ in record_files(backend))
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    again = RecordIndex(backend, _later(backend))
    assert again.rows == index.rows and gone not in again.rows
    assert again.sound(task_id) == "f" * 64


def test_a_damaged_appended_line_is_ignored_alone(tmp_path: Path) -> None:
    """A torn or altered appended line loses its rows; the body and other lines stay."""
    _, backend, path = _indexed(tmp_path, 12)
    rows = RecordIndex(backend, _later(backend)).rows
    with path.open("ab") as f:
        f.write(b"\n" + b"0" * 64 + b' {"torn":')
    index = RecordIndex(backend, _later(backend))
    task_id, st = next(iter(record_files(backend)))
    index.put(task_id, st, "e" * 64, _facts(task_id))
    index.save(t for t, _ in record_files(backend))
    again = RecordIndex(backend, _later(backend))
    assert again.rows.keys() == rows.keys() and again.sound(task_id) == "e" * 64


def test_the_file_is_rewritten_whole_after_max_deltas_lines(tmp_path: Path) -> None:
    """Appended lines do not pile up: the save after `MAX_DELTAS` of them rewrites the file."""
    _, backend, path = _indexed(tmp_path, 12)
    task_id, st = next(iter(record_files(backend)))
    for _ in range(MAX_DELTAS + 1):
        index = RecordIndex(backend, _later(backend))
        index.put(task_id, st, "", _facts(task_id))
        index.save(t for t, _ in record_files(backend))
    assert path.read_bytes().count(b"\n") == 1
    assert RecordIndex(backend, _later(backend)).trusted(task_id, st) is not None
