"""Action records and store paths: nothing read from a store can name a path outside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

import stardag as sd
from stardag.store import _record
from stardag.store._record import ActionRecord, now_iso
from stardag.store._store import Store, blob_path, record_path, signature_path

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


INVALID: list[dict[str, Any]] = [
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
    {"size_stored": -1},
    {"task_id": "34" * 32},
    {"requires": ["ab" * 32, 7]},
    {"spec": None},
    {"inline": False},
    {"serializer": 7},
]


@pytest.mark.parametrize("overrides", INVALID)
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


@pytest.mark.parametrize("url", ["local", "memory://scan-records"])
def test_a_scan_reads_every_record_and_nothing_else(tmp_path: Path, url: str) -> None:
    """`scan_records` gives each record's task id, stored bytes and (locally) file stats,
    in one pass, and skips what is not a record: signatures, stray names, folders."""
    store = Store(str(tmp_path / "store") if url == "local" else url)
    ids = [blake3(bytes([i])).hexdigest() for i in range(5)]
    for task_id in ids:
        store.put_record(ActionRecord(**_fields(task_id=task_id)))
    backend = store.backend
    backend.put_bytes(signature_path(ids[0]), b"sig")
    backend.put_bytes(f"records/{ids[1][:2]}/{ids[1][2:]}.json.tmp", b"x")
    backend.put_bytes("records/zz/" + "a" * 62 + ".json", b"x")
    backend.put_bytes("records/readme.json", b"x")
    if url == "local":  # a folder with a record's name
        (tmp_path / "store" / record_path("cd" * 32)).mkdir(parents=True)
    scanned = {t: (stat, data) for t, stat, data in store.scan_records()}
    assert sorted(scanned) == sorted(store.iter_records()) == sorted(ids)
    for task_id, (stat, data) in scanned.items():
        assert data == backend.read_bytes(record_path(task_id))
        if url == "local":
            assert stat == backend.stat(record_path(task_id))
        else:
            assert stat is None
    store.delete_record(ids[2])
    assert sorted(t for t, _, _ in store.scan_records()) == sorted(set(ids) - {ids[2]})


# -- the quick parse (gc and verify read every record of a store through it) ----------------
_HEXISH = st.text(alphabet="0123456789abcdefA,/", min_size=62, max_size=66)
_ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    _HEXISH,
    st.just(TASK_ID),
    st.just(DIGEST),
    st.just("json"),
    st.just("zstd"),
    st.lists(st.one_of(_HEXISH, st.just(DIGEST), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@pytest.mark.parametrize("overrides", INVALID)
def test_the_quick_parse_declines_every_invalid_field(overrides: dict[str, Any]) -> None:
    """Each invalid field alone makes the quick path hand the record to the full one."""
    raw = json.loads(json.dumps(_fields(**overrides)))
    assert _record._quick(ActionRecord, raw, TASK_ID) is None


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(sorted(_fields())), _ODD, max_size=2),
    dropped=st.sets(st.sampled_from(sorted(_fields())), max_size=1),
    extra=st.booleans(),
)
def test_the_quick_parse_accepts_only_what_the_full_validation_accepts(
    changes: dict[str, Any], dropped: set[str], extra: bool
) -> None:
    """Whatever the quick path accepts, the full validation accepts as an equal record;
    what it declines goes to the full validation, which alone words the error."""
    raw = {k: v for k, v in _fields(**changes).items() if k not in dropped}
    if extra:
        raw["extra"] = 1
    data = json.dumps(raw).encode()
    quick = _record._quick(ActionRecord, json.loads(data), TASK_ID)
    try:
        full = ActionRecord._validated(data, None, TASK_ID)
    except sd.InvalidRecordError as exc:
        assert quick is None, f"the quick path accepted what validation rejects: {exc}"
        with pytest.raises(sd.InvalidRecordError) as caught:
            ActionRecord.from_json(data, TASK_ID)
        assert str(caught.value) == str(exc)
        return
    if quick is not None:
        assert quick == full and vars(quick) == vars(full)
    assert ActionRecord.from_json(data, TASK_ID) == full


@pytest.mark.parametrize("ids", [0, 1, 2, 5])
@pytest.mark.parametrize("inline", ["Ng==", None])
def test_records_this_library_writes_take_the_quick_path(ids: int, inline: str | None) -> None:
    """The quick path is not dead code: every record a build writes takes it."""
    requires = [blake3(bytes([i])).hexdigest() for i in range(ids)]
    record = ActionRecord(**_fields(requires=requires, dynamic=requires[:1], inline=inline))
    quick = _record._quick(ActionRecord, json.loads(record.to_json()), TASK_ID)
    assert quick == record


@pytest.mark.parametrize(
    "ids",
    [
        ["ab" * 32 + "," + "cd" * 32],  # two ids in one string
        ["ab" * 32 + ",", "cd" * 31 + "c"],  # a comma moved across the join
        ["ab" * 31 + "a", "c" + "cd" * 32],  # 63 and 65 characters
        ["ab" * 32, "cd" * 32, ""],
        ["AB" * 32],
    ],
)
def test_the_quick_path_declines_ids_that_only_join_like_hex(ids: list[str]) -> None:
    """Lists of ids are checked joined: lengths and commas cannot trade places."""
    raw = json.loads(json.dumps(_fields(requires=ids)))
    assert _record._quick(ActionRecord, raw, TASK_ID) is None
    with pytest.raises(sd.InvalidRecordError, match="requires is not a list"):
        ActionRecord.from_json(json.dumps(raw).encode(), TASK_ID)
