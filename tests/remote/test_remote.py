"""Push, pull and read-through against a remote on local disk (S3 in test_remote_s3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import remote_tasks
from cli_support import invoke

import stardag as sd
from stardag.registry._fetches import fetches
from stardag.remote import _config as remote_config
from stardag.store._store import Store, blob_path, record_path, store_for


@pytest.fixture
def remote(tmp_path: Path) -> Store:
    """A remote on local disk, configured as the default remote `team`."""
    url = str(tmp_path / "remote")
    assert invoke("remote", "add", "team", url).exit_code == 0
    return Store(url)


def _move_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Become another machine: a fresh store and registry, the same remotes file, and
    the first machine's public key trusted (`stardag remote trust`), as a team does."""
    old = Path(str(remote_config.config_path()))
    writer = invoke("remote", "key").stdout.strip()
    home = tmp_path / name
    home.mkdir()
    if old.exists():
        (home / "remotes.json").write_text(old.read_text())
    monkeypatch.setenv("STARDAG_HOME", str(home))
    assert invoke("remote", "trust", writer).exit_code == 0


def _trust_outright(remote: Store) -> None:
    """Mark the remote `team` trusted: its records are used without a signature."""
    assert invoke("remote", "add", "team", remote.url, "--trusted").exit_code == 0


def test_push_sends_blobs_then_records_and_twice_sends_nothing(remote: Store) -> None:
    """A push sends the closure's blobs and records; a second push sends nothing."""
    root = remote_tasks.dag()
    sd.build(root)
    first = sd.push([root])
    assert first.records_sent == 4 and first.blobs_sent >= 1 and first.bytes_sent > 0
    assert sorted(remote.iter_records()) == sorted(store_for(_local()).iter_records())
    for task_id in remote.iter_records():
        assert remote.is_complete(task_id)
    second = sd.push([root])
    assert (second.blobs_sent, second.records_sent, second.bytes_sent) == (0, 0, 0)


def test_push_of_a_task_not_built_is_a_clear_error(remote: Store) -> None:
    """Pushing a task with no local output raises RemoteError naming it."""
    task = remote_tasks.numbers(limit=5)
    with pytest.raises(sd.RemoteError, match=task.id):
        sd.push([task])


def test_pull_fetches_a_closure_and_records_its_lineage(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh home pulls every output and the registry shows the whole lineage."""
    root = remote_tasks.dag()
    sd.build(root)
    sd.push([root])
    _move_home(tmp_path, monkeypatch, "other")
    report = sd.pull([root.id])
    assert report.records_fetched == 4 and report.blobs_fetched >= 1
    assert root.big.load() == [3 * v for v in range(3000)]
    assert set(sd.registry.lineage(root).nodes) == {
        root.id,
        root.plain.id,
        root.big.id,
        root.plain.values.id,
    }
    assert {f.how for f in fetches()} == {"pull"}
    assert sd.pull([root.id]).records_fetched == 0  # idempotent


def test_build_reads_through_instead_of_computing(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build on a fresh home fetches the root and counts a remote hit."""
    root = remote_tasks.dag()
    sd.build(root)
    sd.push([root])
    _move_home(tmp_path, monkeypatch, "other")
    monkeypatch.setenv("REMOTE_TASKS_FORBID_RUN", "1")
    summary = sd.build(root)
    assert (summary.ran, summary.remote_hits, summary.already_complete) == (0, 1, 1)
    assert "1 from a remote" in str(summary)
    assert root.load() == {"total": sum(range(3000)), "big": 3 * sum(range(3000))}
    hits = fetches(build_id=summary.build_id)
    assert [(h.task_id, h.how, h.remote) for h in hits] == [(root.id, "read-through", remote.url)]
    assert len(sd.registry.lineage(root).nodes) == 4


def test_no_remote_means_no_read_through(tmp_path: Path) -> None:
    """Without a remote configured a build computes as always."""
    summary = sd.build(remote_tasks.numbers(limit=10))
    assert (summary.ran, summary.remote_hits) == (1, 0)


def test_corrupt_blob_on_the_remote_is_rejected(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote blob whose bytes do not match its digest never appears locally; a build
    computes the task instead."""
    task = remote_tasks.numbers(limit=3000)
    sd.build(task)
    sd.push([task])
    record = remote.get_record(task.id)
    assert record is not None and record.inline is None
    other = remote.put_bytes(b"other bytes" * 1000)
    path = Path(remote.url, blob_path(record.digest))
    path.write_bytes(Path(remote.url, blob_path(other.digest)).read_bytes())
    _move_home(tmp_path, monkeypatch, "other")
    with pytest.raises(sd.CorruptBlobError, match=record.digest):
        sd.pull([task.id])
    local = store_for(_local())
    assert not local.has_blob(record.digest) and local.get_record(task.id) is None
    summary = sd.build(task)
    assert (summary.ran, summary.remote_hits) == (1, 0)


def test_record_whose_spec_does_not_hash_to_its_id_is_rejected(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forged record (spec of another task under this id) is not fetched."""
    task = remote_tasks.total(values=remote_tasks.numbers(limit=3))
    sd.build(task)
    sd.push([task])
    path = Path(remote.url, record_path(task.id))
    data = json.loads(path.read_text())
    data["spec"]["params"]["values"] = {"$task": "0" * 64}
    path.write_text(json.dumps(data))
    _move_home(tmp_path, monkeypatch, "other")
    _trust_outright(remote)  # so the check behind the signature is what is tested
    with pytest.raises(sd.RemoteError, match="does not hash to its task id"):
        sd.pull([task.id])
    assert store_for(_local()).get_record(task.id) is None


def test_record_naming_a_path_outside_the_store_is_rejected(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record whose digest is a path is invalid: nothing outside the store is read."""
    task = remote_tasks.numbers(limit=3000)
    sd.build(task)
    sd.push([task])
    path = Path(remote.url, record_path(task.id))
    data = json.loads(path.read_text())
    data["digest"] = "../../../../etc/passwd"
    path.write_text(json.dumps(data))
    _move_home(tmp_path, monkeypatch, "other")
    _trust_outright(remote)  # so the check behind the signature is what is tested
    with pytest.raises(sd.RemoteError, match="digest"):
        sd.pull([task.id])


def test_pickled_output_from_an_untrusted_remote_is_refused(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pull refuses a pickle from an untrusted remote, saying why; read-through computes."""
    task = remote_tasks.pickled(n=3)
    sd.build(task)
    sd.push([task])
    _move_home(tmp_path, monkeypatch, "other")
    with pytest.raises(sd.UntrustedRemoteError, match="runs code") as caught:
        sd.pull([task.id])
    assert caught.value.task_id == task.id and "--trusted" in str(caught.value)
    assert store_for(_local()).get_record(task.id) is None
    summary = sd.build(task)
    assert (summary.ran, summary.remote_hits) == (1, 0)


def test_pickled_output_from_a_trusted_remote_loads(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marked trusted, the same remote's pickle is read through and loads."""
    task = remote_tasks.pickled(n=3)
    sd.build(task)
    sd.push([task])
    _move_home(tmp_path, monkeypatch, "other")
    _trust_outright(remote)
    summary = sd.build(task)
    assert summary.remote_hits == 1 and task.load() == remote_tasks.Opaque(3)


def test_write_through_pushes_each_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With write-through on, a build leaves every output on the remote."""
    url = str(tmp_path / "remote")
    assert invoke("remote", "add", "team", url, "--write-through").exit_code == 0
    root = remote_tasks.dag()
    sd.build(root)
    assert sorted(Store(url).iter_records()) == sorted(store_for(_local()).iter_records())


def test_cli_remote_add_list_remove(tmp_path: Path) -> None:
    """`stardag remote` adds, lists (active marked) and removes remotes."""
    assert invoke("remote", "add", "a", str(tmp_path / "a")).exit_code == 0
    assert invoke("remote", "add", "b", "s3://bucket/b", "--trusted").exit_code == 0
    listed = json.loads(invoke("remote", "list", "--json").output)
    assert [(r["name"], r["active"], r["trusted"]) for r in listed] == [
        ("a", True, False),
        ("b", False, True),
    ]
    assert invoke("remote", "remove", "a").exit_code == 0
    assert [r["name"] for r in json.loads(invoke("remote", "list", "--json").output)] == ["b"]
    missing = invoke("remote", "remove", "nope")
    assert missing.exit_code != 0 and "no remote named 'nope'" in missing.output


def test_cli_push_and_pull(remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stardag push --all` then `stardag pull TASK` on another home."""
    root = remote_tasks.dag()
    sd.build(root)
    pushed = invoke("push", "--all", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.output)["records_sent"] == 4
    again = invoke("push", root.id[:10])
    assert again.exit_code == 0 and "sent 0 blobs" in again.output
    _move_home(tmp_path, monkeypatch, "other")
    pulled = invoke("pull", root.id[:12], "--remote", "team")
    assert pulled.exit_code == 0, pulled.output
    assert "4 tasks" in pulled.output and root.load()["total"] == sum(range(3000))


def test_cli_push_needs_tasks_or_all(remote: Store) -> None:
    """`stardag push` with nothing named is a usage error."""
    result = invoke("push")
    assert result.exit_code == 2 and "--all" in result.output


def _local() -> str:
    from stardag._config import target_root

    return target_root()
