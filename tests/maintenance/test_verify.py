"""verify: every kind of damage is reported by its class, with its task, and repaired."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cli_tasks
import pytest

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._verify import Kind, verify
from stardag.registry import open as open_registry
from stardag.store._record import ActionRecord
from stardag.store._store import Store, blob_path, record_path, store_for


@pytest.fixture
def store() -> Store:
    """The default store, with the pipeline built into it (recorded in the registry)."""
    sd.build(cli_tasks.pipeline)
    return store_for(target_root())


def _path(store: Store, relative: str) -> Path:
    return Path(store.backend.abspath(relative))  # type: ignore[attr-defined]  # a local store


def _blob_of(store: Store, task: sd.Task[object]) -> Path:
    record = store.get_record(task.id)
    assert record is not None and record.inline is None
    return _path(store, blob_path(record.digest))


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_a_sound_store_has_no_findings(store: Store) -> None:
    """Everything a build wrote checks out, registry rows included."""
    report = verify(store, open_registry())
    assert report.ok and report.findings == []
    assert report.blobs >= 2 and report.records == 4 and report.outputs == 4


def test_a_flipped_byte_is_a_corrupt_frame_and_repair_makes_the_task_rebuild(store: Store) -> None:
    """A flipped byte in a compressed blob: corrupt-frame; repair drops blob and record."""
    blob = _blob_of(store, cli_tasks.base)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    report = verify(store, open_registry(), repair=True)
    assert [f.kind for f in report.findings] == [Kind.CORRUPT_FRAME]
    assert cli_tasks.base.id in report.findings[0].task_ids
    assert report.findings[0].repaired
    assert not cli_tasks.base.complete()
    assert verify(store, open_registry()).findings == []
    sd.build(cli_tasks.base)
    assert cli_tasks.base.load() == list(range(cli_tasks.BIG))


def test_a_truncated_frame_is_reported_as_truncated(store: Store) -> None:
    """A blob cut short: truncated-frame, naming the task whose output it is."""
    blob = _blob_of(store, cli_tasks.base)
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])
    report = verify(store, open_registry(), repair=True)
    assert [f.kind for f in report.findings] == [Kind.TRUNCATED_FRAME]
    assert report.findings[0].task_ids == (cli_tasks.base.id,)
    assert verify(store, open_registry()).ok


def test_a_deleted_blob_under_a_record_is_missing_and_the_record_goes(store: Store) -> None:
    """A record whose blob is gone: missing-blob; repair removes the record."""
    _blob_of(store, cli_tasks.base).unlink()
    report = verify(store, open_registry(), repair=True)
    kinds = {f.kind for f in report.findings}
    assert Kind.MISSING_BLOB in kinds
    missing = next(f for f in report.findings if f.kind is Kind.MISSING_BLOB)
    assert missing.task_ids == (cli_tasks.base.id,)
    assert store.get_record(cli_tasks.base.id) is None
    assert verify(store, open_registry()).findings == []


def test_a_blob_under_a_wrong_name_is_a_digest_mismatch(store: Store) -> None:
    """Sound bytes planted under another digest: digest-mismatch; repair deletes them."""
    source = _blob_of(store, cli_tasks.base)
    wrong = "ab" * 32
    planted = _path(store, blob_path(wrong))
    planted.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, planted)
    report = verify(store, open_registry(), repair=True)
    assert [(f.kind, f.digest) for f in report.findings] == [(Kind.DIGEST_MISMATCH, wrong)]
    assert not planted.exists()
    assert cli_tasks.base.complete()


def test_an_old_temp_file_is_an_orphan_and_a_fresh_one_is_left(store: Store) -> None:
    """A temp file older than the grace period is reported and deleted; a new one stays."""
    old = _path(store, "tmp/leftover")
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"partial")
    _age(old, 2)
    fresh = _path(store, "tmp/in-progress")
    fresh.write_bytes(b"still writing")
    report = verify(store, open_registry(), repair=True)
    assert [(f.kind, f.path) for f in report.findings] == [(Kind.ORPHAN_TEMP, "tmp/leftover")]
    assert report.ok  # garbage, not damage
    assert not old.exists() and fresh.exists()


def test_a_malformed_record_is_invalid(store: Store) -> None:
    """A record that does not parse: invalid-record; repair deletes it."""
    path = _path(store, record_path(cli_tasks.summed.id))
    path.write_text("{not json")
    report = verify(store, open_registry(), repair=True)
    assert [f.kind for f in report.findings] == [Kind.INVALID_RECORD]
    assert not path.exists()
    assert verify(store, open_registry()).findings == []  # its registry output is marked


def test_a_record_whose_spec_hashes_elsewhere_is_a_spec_mismatch(store: Store) -> None:
    """A tampered spec no longer hashes to the task id it is stored under."""
    path = _path(store, record_path(cli_tasks.summed.id))
    data = json.loads(path.read_text())
    data["spec"]["params"]["tampered"] = 1
    path.write_text(json.dumps(data))
    report = verify(store, open_registry())
    assert [(f.kind, f.task_ids) for f in report.findings] == [
        (Kind.SPEC_MISMATCH, (cli_tasks.summed.id,))
    ]
    assert not report.ok


def test_a_registry_output_whose_bytes_are_gone_is_output_missing(store: Store) -> None:
    """Record and blob both deleted behind the registry's back: output-missing, then marked."""
    record = store.get_record(cli_tasks.base.id)
    assert record is not None
    store.delete_record(cli_tasks.base.id)
    store.delete_blob(record.digest)
    report = verify(store, open_registry(), repair=True)
    assert [(f.kind, f.digest) for f in report.findings] == [(Kind.OUTPUT_MISSING, record.digest)]
    assert verify(store, open_registry()).findings == []


def test_an_unrecorded_blob_is_a_warning(store: Store) -> None:
    """A blob nothing names is garbage for gc: a warning, not an error."""
    digest = store.put_bytes(b"orphan bytes " * 1000).digest
    _age(_path(store, blob_path(digest)), 2)
    report = verify(store, open_registry())
    assert [(f.kind, f.digest) for f in report.findings] == [(Kind.UNRECORDED_BLOB, digest)]
    assert report.ok


def test_a_sample_checks_part_of_the_store(store: Store) -> None:
    """`sample` checks a share of the blobs and records, at least one of each."""
    sd.build([cli_tasks.numbers(limit=2000 + i) for i in range(8)])
    full = verify(store, None)
    part = verify(store, None, sample=0.25, seed=1)
    assert 1 <= part.blobs < full.blobs
    assert 1 <= part.records < full.records


def test_a_sample_finds_damage_in_what_it_checks(store: Store) -> None:
    """A 100% sample is a full check of blobs: a flipped byte is found."""
    blob = _blob_of(store, cli_tasks.base)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0x01
    blob.write_bytes(bytes(data))
    assert Kind.CORRUPT_FRAME in {f.kind for f in verify(store, None, sample=1.0).findings}


def test_each_record_is_read_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output inline in its record is judged by the record verify just read."""
    reads: list[str] = []
    from_json = ActionRecord.from_json

    def counted(data: bytes, task_id: str) -> ActionRecord:
        reads.append(task_id)
        return from_json(data, task_id)

    inline = [t for t in store.iter_records() if (r := store.get_record(t)) and r.inline]
    assert inline  # the pipeline has small outputs, stored inside their records
    monkeypatch.setattr(ActionRecord, "from_json", counted)
    report = verify(store, open_registry())
    assert report.ok and report.outputs == 4
    assert sorted(reads) == sorted(store.iter_records())


def test_blobs_hashed_at_once_report_in_digest_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several damaged blobs checked on threads: each finding, in the order of the digests."""
    blobs = sorted(store.iter_blobs())
    assert len(blobs) >= 2
    for digest in blobs:
        path = _path(store, blob_path(digest))
        path.write_bytes(path.read_bytes()[:-3])
    report = verify(store, open_registry())
    assert [f.digest for f in report.findings if f.digest in blobs][: len(blobs)] == blobs


@pytest.fixture
def no_racy_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the record index cache records written just now (in real use, only records
    older than `RACY` are, and a test's are all younger)."""
    from stardag.store import _index

    monkeypatch.setattr(_index, "RACY", -3600.0)


def _same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    """Replace `old` by `new` (as long) in a file, and put its mtime back."""
    assert len(old) == len(new)
    before = path.stat()
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.usefixtures("no_racy_margin")
def test_a_second_verify_does_not_parse_records_it_checked_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records whose bytes hash as they did when a verify checked them are not parsed
    again (each is still read and hashed), and the report is the same."""
    first = verify(store, open_registry())
    reads: list[str] = []
    from_json = ActionRecord.from_json

    def counted(data: bytes, task_id: str) -> ActionRecord:
        reads.append(task_id)
        return from_json(data, task_id)

    monkeypatch.setattr(ActionRecord, "from_json", counted)
    second = verify(store, open_registry())
    assert reads == []
    assert first.ok and second.ok and second.findings == []
    assert (second.records, second.outputs, second.blobs) == (4, 4, first.blobs)


@pytest.mark.usefixtures("no_racy_margin")
def test_a_record_tampered_after_a_clean_verify_is_still_reported(store: Store) -> None:
    """A record changed in place (same size, mtime put back) after a clean verify: the
    next verify reads its bytes, finds they are not the ones it checked, and reports it."""
    assert verify(store, open_registry()).ok
    path = _path(store, record_path(cli_tasks.summed.id))
    _same_size_edit(path, b'"name":"total"', b'"name":"totaL"')
    report = verify(store, open_registry())
    assert [(f.kind, f.task_ids) for f in report.findings] == [
        (Kind.SPEC_MISMATCH, (cli_tasks.summed.id,))
    ]


@pytest.mark.usefixtures("no_racy_margin")
def test_inline_bytes_corrupted_after_a_clean_verify_are_still_reported(store: Store) -> None:
    """An inline output whose base64 still decodes but to other bytes, after a clean
    verify: a digest mismatch, as on the first verify."""
    assert verify(store, open_registry()).ok
    record = store.get_record(cli_tasks.summed.id)
    assert record is not None and record.inline is not None
    inline = record.inline.encode()
    other = bytes([inline[0] ^ 0x01]) + inline[1:]  # still base64, other bytes
    _same_size_edit(_path(store, record_path(cli_tasks.summed.id)), inline, other)
    report = verify(store, open_registry())
    assert [(f.kind, f.task_ids) for f in report.findings] == [
        (Kind.DIGEST_MISMATCH, (cli_tasks.summed.id,))
    ]


@pytest.mark.usefixtures("no_racy_margin")
def test_a_blob_corrupted_after_a_clean_verify_is_still_reported(store: Store) -> None:
    """Blobs are hashed on every verify: a flipped byte after a clean one is reported."""
    assert verify(store, open_registry()).ok
    blob = _blob_of(store, cli_tasks.base)
    before = blob.stat()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = verify(store, open_registry())
    assert [f.kind for f in report.findings] == [Kind.CORRUPT_FRAME]
    assert cli_tasks.base.id in report.findings[0].task_ids
