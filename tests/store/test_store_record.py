"""Action records and store paths: nothing read from a store can name a path outside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

import stardag as sd
from stardag.store._record import ActionRecord, now_iso
from stardag.store._store import Store, blob_path, record_path

TASK_ID = "12" * 32
DIGEST = blake3(b"6").hexdigest()


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "task_id": TASK_ID,
        "spec": {"name": "t"},
        "digest": DIGEST,
        "serializer": "json",
        "size_raw": 1,
        "size_stored": 0,
        "created": now_iso(),
        "compression": "none",
        "requires": [],
        "dynamic": [],
        "inline": "Ng==",
        "schema": 1,
    }
    fields.update(overrides)
    return fields


def test_valid_record_round_trips() -> None:
    """A record parses back equal from its own JSON."""
    record = ActionRecord(**_fields())
    assert ActionRecord.from_json(record.to_json(), TASK_ID) == record


@pytest.mark.parametrize(
    "overrides",
    [
        {"task_id": "../../etc/passwd"},
        {"digest": "../" + "a" * 61},
        {"digest": "A" * 64},
        {"size_raw": "1"},
        {"size_raw": -1},
        {"size_stored": True},
        {"spec": []},
        {"serializer": "../x"},
        {"compression": "lz4"},
        {"requires": ["not-an-id"]},
        {"dynamic": "ab" * 32},
        {"inline": 7},
        {"created": 0},
        {"schema": 99},
    ],
)
def test_invalid_field_is_rejected(overrides: dict[str, Any]) -> None:
    """A field of the wrong type or format makes the record invalid."""
    data = json.dumps(_fields(**overrides)).encode()
    with pytest.raises(sd.InvalidRecordError) as caught:
        ActionRecord.from_json(data, TASK_ID)
    assert caught.value.task_id == TASK_ID


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[1, 2]", json.dumps({**_fields(), "extra": 1}).encode(), b"{}"],
)
def test_malformed_record_is_rejected(data: bytes) -> None:
    """Bad JSON, a non-object, an unknown or a missing field is an InvalidRecordError."""
    with pytest.raises(sd.InvalidRecordError):
        ActionRecord.from_json(data, TASK_ID)


def test_record_stored_under_another_id_is_rejected() -> None:
    """A record must name the task id it is stored under."""
    data = ActionRecord(**_fields()).to_json()
    with pytest.raises(sd.InvalidRecordError, match="names task"):
        ActionRecord.from_json(data, "34" * 32)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab", "A" * 64, "g" * 64, "a" * 63 + "/"])
def test_paths_are_made_only_from_hex_keys(key: str) -> None:
    """A digest or task id that is not 64 lowercase hex names no path."""
    for path_of in (blob_path, record_path):
        with pytest.raises(sd.InvalidKeyError):
            path_of(key)


def test_store_refuses_bad_keys(tmp_path: Path) -> None:
    """Reading or writing under a bad key raises InvalidKeyError and touches nothing."""
    store = Store(str(tmp_path / "store"))
    with pytest.raises(sd.InvalidKeyError):
        store.get_record("../../secrets")
    with pytest.raises(sd.InvalidKeyError):
        store.has_blob("../x")
    assert not (tmp_path / "store").exists()


def test_put_record_validates_before_publishing(tmp_path: Path) -> None:
    """An invalid record is refused before anything is written."""
    store = Store(str(tmp_path / "store"))
    with pytest.raises(sd.InvalidRecordError):
        store.put_record(ActionRecord(**_fields(size_raw=-5)))
    assert not (tmp_path / "store" / "records").exists()


def test_unparseable_record_file_is_reported_with_its_task(tmp_path: Path) -> None:
    """A damaged record on disk raises InvalidRecordError naming the task."""
    store = Store(str(tmp_path / "store"))
    path = tmp_path / "store" / record_path(TASK_ID)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"task_id": "12')
    with pytest.raises(sd.InvalidRecordError) as caught:
        store.get_record(TASK_ID)
    assert caught.value.task_id == TASK_ID


def test_a_record_changed_on_disk_after_it_was_read_is_read_again(tmp_path: Path) -> None:
    """The store keeps records it has seen, but only while their file holds the same bytes:
    a record rewritten (or damaged) after a read is parsed and checked again."""
    store = Store(str(tmp_path / "store"))
    record = ActionRecord(**_fields())
    store.put_record(record)
    assert store.get_record(TASK_ID) == record
    path = tmp_path / "store" / record_path(TASK_ID)
    path.write_bytes(ActionRecord(**_fields(created="then")).to_json())
    changed = store.get_record(TASK_ID)
    assert changed is not None and changed.created == "then"
    path.write_bytes(path.read_bytes().replace(b'"size_raw":1', b'"size_raw":-1'))
    with pytest.raises(sd.InvalidRecordError, match="size_raw"):
        store.get_record(TASK_ID)
    path.unlink()
    assert store.get_record(TASK_ID) is None and not store.is_complete(TASK_ID)
