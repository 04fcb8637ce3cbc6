"""Signed records: a reader uses a remote record only if a key it trusts signed it."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
from cli_support import invoke

import stardag as sd
from stardag.store._record import ActionRecord
from stardag.store._store import Store, record_path, signature_path

sd.auto_namespace(__name__)


@sd.task
def numbers(limit: int) -> list[int]:
    return list(range(limit))


@sd.task
def total(values: sd.Depends[list[int]]) -> int:
    return sum(values)


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A remote on local disk, named by URL (untrusted), active through STARDAG_REMOTE."""
    store = Store(str(tmp_path / "remote"))
    monkeypatch.setenv("STARDAG_REMOTE", store.url)
    return store


def _pushed(*tasks: sd.BaseTask) -> str:
    """Build and push tasks as the current machine; its public key."""
    sd.build(list(tasks))
    sd.push(list(tasks))
    return invoke("remote", "key").stdout.strip()


def _machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("STARDAG_HOME", str(tmp_path / name))


def _warnings(caplog: pytest.LogCaptureFixture, task_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if task_id in r.getMessage()]


def test_a_pushed_record_carries_a_signature_beside_it(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push writes `<id>.sig` beside each record, naming the writer's key."""
    task = numbers(limit=3000)
    key = _pushed(task)
    signature = Path(remote.url, signature_path(task.id)).read_text()
    assert signature.startswith(key.split(":")[0] + ":") and signature.endswith("\n")
    assert list(remote.iter_records()) == [task.id]  # a signature is not a record


def test_the_writer_reads_its_own_records_back(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Your own key is trusted: a fresh store on the same home reads through its pushes."""
    task = numbers(limit=3000)
    _pushed(task)
    (Path(os.environ["STARDAG_HOME"]) / "store").rename(tmp_path / "old-store")
    summary = sd.build(task)
    assert (summary.ran, summary.remote_hits) == (0, 1)


def test_a_planted_unsigned_record_is_reported_once_and_computed_here(
    remote: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unsigned record on a remote is skipped with one warning; the task runs here."""
    task = numbers(limit=10)
    with monkeypatch.context() as off:
        off.setenv("STARDAG_REMOTE", "none")
        sd.build(task)
    record = task.target().store.get_record(task.id)
    assert record is not None
    forged = _with_value(record, list(range(10, 0, -1)))
    remote.put_record(forged)  # anyone who can write there: no signature
    _machine(tmp_path, monkeypatch, "reader")
    summary = sd.build(total(values=task))
    assert (summary.ran, summary.remote_hits) == (2, 0)
    assert total(values=task).load() == 45 and task.load() == list(range(10))
    task.target().store.delete_record(task.id)
    assert sd.build(task).ran == 1  # asked again in this process: reported once
    (message,) = _warnings(caplog, task.id)
    assert "is not signed" in message and remote.url in message
    assert "stardag remote trust" in message


def test_a_record_signed_by_an_untrusted_key_is_skipped(
    remote: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record signed by a key the reader does not trust is not used."""
    task = numbers(limit=3000)
    _machine(tmp_path, monkeypatch, "mallory")
    _pushed(task)
    _machine(tmp_path, monkeypatch, "reader")
    summary = sd.build(task)
    assert (summary.ran, summary.remote_hits) == (1, 0)
    (message,) = _warnings(caplog, task.id)
    assert "a key you do not trust" in message


def test_trusting_the_writers_key_makes_its_records_used(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `stardag remote trust KEY`, the writer's records are read through and pulled."""
    root = total(values=numbers(limit=3000))
    _machine(tmp_path, monkeypatch, "alice")
    key = _pushed(root)
    _machine(tmp_path, monkeypatch, "bob")
    assert invoke("remote", "trust", key).exit_code == 0
    summary = sd.build(root)
    assert (summary.ran, summary.remote_hits) == (0, 1)
    assert sd.pull([root.id]).records_fetched == 1  # the upstream one; the root is here
    assert numbers(limit=3000).load()[-1] == 2999


def test_a_signed_record_moved_to_another_task_id_is_refused(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record and its signature copied under another task id fail the signature check."""
    honest, target = numbers(limit=3000), numbers(limit=4000)
    _machine(tmp_path, monkeypatch, "alice")
    key = _pushed(honest)
    for path in (record_path, signature_path):
        src, dst = Path(remote.url, path(honest.id)), Path(remote.url, path(target.id))
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    _machine(tmp_path, monkeypatch, "bob")
    assert invoke("remote", "trust", key).exit_code == 0
    with pytest.raises(sd.UntrustedRecordError, match="moved from another task") as caught:
        sd.pull([target.id])
    assert caught.value.task_id == target.id
    assert sd.build(target).ran == 1 and target.load()[-1] == 3999


def test_a_signed_record_altered_after_signing_is_refused(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing a signed record's value (its inline bytes and digest) breaks its signature."""
    task = numbers(limit=10)
    _machine(tmp_path, monkeypatch, "alice")
    key = _pushed(task)
    record = remote.get_record(task.id)
    assert record is not None
    Path(remote.url, record_path(task.id)).write_bytes(_with_value(record, [6] * 10).to_json())
    _machine(tmp_path, monkeypatch, "bob")
    assert invoke("remote", "trust", key).exit_code == 0
    assert sd.build(task).remote_hits == 0 and task.load() == list(range(10))


def test_a_trusted_remote_uses_unsigned_records(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote added with --trusted needs no signatures: an unsigned record is used."""
    task = numbers(limit=3000)
    _pushed(task)
    Path(remote.url, signature_path(task.id)).unlink()
    _machine(tmp_path, monkeypatch, "reader")
    assert sd.build(task).remote_hits == 0  # untrusted: skipped
    task.target().store.delete_record(task.id)
    assert invoke("remote", "add", "team", remote.url, "--trusted").exit_code == 0
    assert sd.build(task).remote_hits == 1


def test_pull_refuses_an_unsigned_root_and_skips_an_unsigned_upstream(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pull: an unsigned root raises; an unsigned upstream record is reported and left."""
    base = numbers(limit=3000)
    root = total(values=base)
    _machine(tmp_path, monkeypatch, "alice")
    key = _pushed(root)
    Path(remote.url, signature_path(base.id)).unlink()
    _machine(tmp_path, monkeypatch, "bob")
    assert invoke("remote", "trust", key).exit_code == 0
    with pytest.raises(sd.UntrustedRecordError, match="is not signed"):
        sd.pull([base.id])
    report = sd.pull([root.id])
    assert (report.records_fetched, report.untrusted) == (1, (base.id,))
    assert root.complete() and not base.complete()
    root.target().store.delete_record(root.id)
    pulled = invoke("pull", root.id)
    assert pulled.exit_code == 0, pulled.output
    assert "1 upstream records no key you trust signed were left there" in pulled.stdout


def test_push_signs_a_record_left_unsigned_there_and_then_sends_nothing(
    remote: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record on the remote without a signature is replaced by the pusher's signed one."""
    task = numbers(limit=3000)
    _pushed(task)
    Path(remote.url, signature_path(task.id)).unlink()
    assert sd.push([task]).records_sent == 1
    assert Path(remote.url, signature_path(task.id)).exists()
    assert sd.push([task]).records_sent == 0


def test_write_through_signs_what_it_pushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write-through pushes signed records: a machine trusting the writer reads them."""
    url = str(tmp_path / "remote")
    _machine(tmp_path, monkeypatch, "alice")
    assert invoke("remote", "add", "team", url, "--write-through").exit_code == 0
    task = numbers(limit=3000)
    sd.build(task)
    key = invoke("remote", "key").stdout.strip()
    assert Path(url, signature_path(task.id)).exists()
    _machine(tmp_path, monkeypatch, "bob")
    monkeypatch.setenv("STARDAG_REMOTE", url)
    assert invoke("remote", "trust", key).exit_code == 0
    assert sd.build(task).remote_hits == 1


def test_deleting_a_record_deletes_its_signature(remote: Store) -> None:
    """gc's delete of a remote record takes its signature with it."""
    task = numbers(limit=3000)
    _pushed(task)
    remote.delete_record(task.id)
    assert not Path(remote.url, signature_path(task.id)).exists()
    assert not Path(remote.url, record_path(task.id)).exists()


# -- the CLI --------------------------------------------------------------------------------------
def test_remote_key_makes_one_private_key_and_prints_the_same_public_key(
    stardag_home: Path,
) -> None:
    """`stardag remote key` makes the key once (mode 0600) and prints NAME:BASE64."""
    first = invoke("remote", "key")
    assert first.exit_code == 0
    key = first.stdout.strip()
    name, _, encoded = key.partition(":")
    assert name and len(encoded) == 44
    secret = stardag_home / "signing-key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert invoke("remote", "key").stdout.strip() == key
    assert [r["own"] for r in json.loads(invoke("remote", "keys", "--json").stdout)] == [True]


def test_remote_trust_lists_and_untrusts_a_key(stardag_home: Path) -> None:
    """trust adds a key (once), keys lists it, untrust removes it."""
    other = "alice@laptop-1:" + "A" * 43 + "="
    assert "trusting" in invoke("remote", "trust", other).stdout
    assert "already trusted" in invoke("remote", "trust", other).stdout
    assert other in invoke("remote", "keys").stdout
    assert invoke("remote", "untrust", other).exit_code == 0
    assert other not in invoke("remote", "keys").stdout
    again = invoke("remote", "untrust", other)
    assert again.exit_code == 2 and "is not trusted" in again.stderr


@pytest.mark.parametrize(
    "bad",
    ["no-colon", "name:not base64!", "name:AAAA", ":" + "A" * 43 + "=", "bad name:" + "A" * 43],
)
def test_remote_trust_of_a_malformed_key_is_one_line_and_exit_2(
    stardag_home: Path, bad: str
) -> None:
    """A key that is not NAME:BASE64 of 32 bytes: exit 2, one line, nothing trusted."""
    result = invoke("remote", "trust", bad)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "is not a public key" in result.stderr
    assert "Traceback" not in result.output
    assert not (stardag_home / "trusted-public-keys").exists()


def test_your_own_key_cannot_be_untrusted(stardag_home: Path) -> None:
    """Untrusting your own key is refused: what you push is always yours."""
    own = invoke("remote", "key").stdout.strip()
    result = invoke("remote", "untrust", own)
    assert result.exit_code == 2 and "your own key" in result.stderr


def test_a_damaged_trusted_keys_file_names_its_line(stardag_home: Path) -> None:
    """A bad line in trusted-public-keys is an error naming the file and the line."""
    stardag_home.mkdir(parents=True, exist_ok=True)
    (stardag_home / "trusted-public-keys").write_text("# team\nnot a key\n")
    result = invoke("remote", "keys")
    assert result.exit_code == 2 and "line 2" in result.stderr


def _with_value(record: ActionRecord, value: list[int]) -> ActionRecord:
    """The record with another (inline) JSON value: what a forger would plant."""
    import base64

    from stardag._hashing import digest_bytes

    data = json.dumps(value, separators=(",", ":")).encode()
    return dataclasses.replace(
        record,
        inline=base64.b64encode(data).decode(),
        digest=digest_bytes(data),
        size_raw=len(data),
        size_stored=len(data),
    )
