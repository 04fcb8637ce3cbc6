"""Remotes that hold what no honest writer puts there: cycles, junk records, corrupt blobs.

The reading machine trusts these remotes outright (`--trusted`), so what is tested is
every check behind the signatures: a trusted writer, or a stolen key, can still plant
these (test_signatures covers the signatures themselves).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pytest

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._gc import GcRoots, mark
from stardag.registry._fetches import record_pull
from stardag.remote import _config as remote_config
from stardag.store._record import ActionRecord
from stardag.store._store import Store, blob_path, record_path, store_for

sd.auto_namespace(__name__)


@sd.task
def numbers(limit: int) -> list[int]:
    return list(range(limit))


@sd.task
def total(values: sd.Depends[list[int]]) -> int:
    return sum(values)


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A remote on local disk, active through STARDAG_REMOTE."""
    store = Store(str(tmp_path / "remote"))
    monkeypatch.setenv("STARDAG_REMOTE", store.url)
    return store


def _become_another_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh home that trusts the active remote outright (its records need no signature)."""
    monkeypatch.setenv("STARDAG_HOME", str(tmp_path / "another"))
    remote_config.add("hostile", os.environ["STARDAG_REMOTE"], trusted=True)


def _local() -> Store:
    return store_for(target_root())


def _built(monkeypatch: pytest.MonkeyPatch, *tasks: sd.BaseTask) -> list[ActionRecord]:
    """Build tasks locally (remotes off) and return their records."""
    with monkeypatch.context() as off:
        off.setenv("STARDAG_REMOTE", "none")
        sd.build(list(tasks))
    records = [_local().get_record(t.id) for t in tasks]
    assert all(r is not None for r in records)
    return records  # type: ignore[return-value]


def _cycle(monkeypatch: pytest.MonkeyPatch, into: Store) -> tuple[ActionRecord, ActionRecord]:
    """Two honest records, each edited to require the other, put into `into`."""
    a, b = _built(monkeypatch, numbers(limit=2000), numbers(limit=3000))
    a = dataclasses.replace(a, requires=[b.task_id])
    b = dataclasses.replace(b, requires=[a.task_id])
    for record in (a, b):
        _local().copy_blob(record.digest, into)
        into.backend.put_bytes(record_path(record.task_id), record.to_json())
    return a, b


def test_pull_of_records_that_form_a_cycle_ends(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cycle among a remote's records is cut: pull fetches both once and ends."""
    a, _ = _cycle(monkeypatch, remote)
    _become_another_machine(tmp_path, monkeypatch)
    report = sd.pull([a.task_id])
    assert report.records_fetched == 2
    assert numbers(limit=2000).load()[-1] == 1999


def test_push_all_of_a_store_whose_records_form_a_cycle_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`push --all` from a store holding a cycle pushes each record once."""
    _cycle(monkeypatch, _local())
    report = sd.push(remote=str(tmp_path / "elsewhere"))
    assert report.records_sent == 2


def test_lineage_and_gc_over_a_cycle_end(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lineage lists every node of a cycle once (in any order); gc's mark walks it once."""
    a, b = _cycle(monkeypatch, _local())
    record_pull(None, [a, b], _local(), remote.url)
    graph = sd.registry.lineage(a.task_id)
    assert sorted(node.task_id for node in graph) == sorted([a.task_id, b.task_id])
    assert len(graph.to_dict()["nodes"]) == 2
    assert "(see above)" in str(graph)
    plan = mark(_local(), None, GcRoots(tasks=(a.task_id,)), grace=0)
    assert set(plan.reached_from) == {a.task_id, b.task_id}


def _junk_record(kind: str, monkeypatch: pytest.MonkeyPatch, remote: Store) -> sd.BaseTask:
    """Put one junk record on the remote for `numbers(limit=10)`; return that task."""
    task = numbers(limit=10)
    path = record_path(task.id)
    if kind == "bad JSON":
        remote.backend.put_bytes(path, b"{not json")
        return task
    record, other = _built(monkeypatch, task, numbers(limit=11))
    if kind == "under the wrong id":
        remote.backend.put_bytes(path, other.to_json())
    else:  # a pickle where the task stores JSON (and the remote is untrusted anyway)
        info = remote.put_bytes(pickle.dumps([6, 6, 6]))
        fake = dataclasses.replace(
            record,
            serializer="pickle",
            digest=info.digest,
            size_raw=info.size_raw,
            size_stored=info.size_stored,
            inline=None,
        )
        remote.backend.put_bytes(path, fake.to_json())
    return task


@pytest.mark.parametrize("kind", ["bad JSON", "under the wrong id", "a pickle for JSON"])
def test_a_junk_record_on_a_remote_is_reported_and_computed_here(
    kind: str,
    remote: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Read-through skips a junk record with one warning naming it, and computes the task."""
    task = _junk_record(kind, monkeypatch, remote)
    _become_another_machine(tmp_path, monkeypatch)
    summary = sd.build(total(values=task))
    assert (summary.ran, summary.remote_hits) == (2, 0)
    assert total(values=task).load() == 45
    task.target().store.delete_record(task.id)
    assert sd.build(task).ran == 1  # asked again in this process: reported once
    reports = [r for r in caplog.records if task.id in r.getMessage()]
    assert len(reports) == 1 and "not fetched" in reports[0].getMessage()


def _corrupt_on_remote(remote: Store, monkeypatch: pytest.MonkeyPatch) -> sd.BaseTask:
    task = numbers(limit=3000)
    (record,) = _built(monkeypatch, task)
    _local().copy_blob(record.digest, remote)
    remote.put_record(record)
    path = Path(remote.url) / blob_path(record.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return task


def test_a_corrupt_blob_on_a_remote_says_what_helps_for_a_remote(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulling a damaged blob names the remote and says to push again, not to repair here."""
    task = _corrupt_on_remote(remote, monkeypatch)
    _become_another_machine(tmp_path, monkeypatch)
    with pytest.raises(sd.CorruptBlobError) as caught:
        sd.pull([task.id])
    message = str(caught.value)
    assert "holds a corrupt copy" in message and remote.url in message
    assert "stardag push" in message and "verify --repair" not in message
    assert not task.complete()


def test_read_through_of_a_corrupt_blob_computes_here(
    remote: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A build whose remote copy is damaged reports it and computes the task itself."""
    task = _corrupt_on_remote(remote, monkeypatch)
    _become_another_machine(tmp_path, monkeypatch)
    assert sd.build(total(values=task)).ran == 2
    assert total(values=task).load() == sum(range(3000))
    assert any("corrupt copy" in r.getMessage() for r in caplog.records)
