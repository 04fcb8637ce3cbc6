"""Checkouts of directory outputs are read-only, and a changed one is never used as is."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import stardag as sd
from stardag._config import target_root
from stardag.maintenance._verify import Kind, verify
from stardag.store._store import store_for

sd.auto_namespace(__name__)


@sd.task
def weights(n: int) -> sd.Directory:
    out = sd.Directory.staging()
    (out.path / "sub").mkdir()
    (out.path / "sub" / "w.bin").write_bytes(b"w" * n)
    (out.path / "notes.txt").write_text("hello")
    return out


@sd.task
def read_weights(d: sd.Depends[sd.Directory]) -> str:
    return (d.path / "sub" / "w.bin").read_text()


def _tamper(path: Path, data: str) -> None:
    """An accidental write: what a careless tool would do (root ignores the mode bits)."""
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    path.write_text(data)


def test_checkout_is_read_only() -> None:
    """Files and folders of a checkout have no write permission."""
    task = weights(n=3)
    sd.build(task)
    root = task.load().path
    for path in [root, root / "sub", root / "sub" / "w.bin", root / "notes.txt"]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path


def test_changed_checkout_is_restored_before_it_is_used() -> None:
    """A file written in a checkout does not flow downstream: the next use checks out again."""
    upstream = weights(n=3)
    sd.build(upstream)
    _tamper(upstream.load().path / "sub" / "w.bin", "TAMPERED")
    reader = read_weights(d=upstream)
    sd.build(reader)
    assert reader.load() == "www"
    assert (upstream.load().path / "sub" / "w.bin").read_text() == "www"


def test_verify_rehashes_checkouts_and_repair_removes_a_changed_one() -> None:
    """`verify` names a changed checkout (same size and mtime too); `repair` deletes it."""
    task = weights(n=3)
    sd.build(task)
    loaded = task.load()
    changed = loaded.path / "notes.txt"
    before = changed.stat()
    _tamper(changed, "HELLO")
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide it from a stat
    store = store_for(target_root())
    assert loaded.digest is not None
    report = verify(store)
    (finding,) = [f for f in report.findings if f.kind is Kind.CHECKOUT_MODIFIED]
    assert finding.digest == loaded.digest and "notes.txt" in finding.detail
    assert not report.ok
    verify(store, repair=True)
    assert not loaded.path.exists()
    assert verify(store).ok
    assert (task.load().path / "notes.txt").read_text() == "hello"
