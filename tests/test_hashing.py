"""Identity: canonical type-tagged encoding, golden ids, and stability across processes."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import stardag as sd
from stardag import _hashing

sd.namespace("golden", __name__)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@sd.task
def golden_leaf(x: int, label: str = "a") -> int:
    return x


@sd.task(version="2")
def golden_node(
    dep: sd.Depends[int],
    weights: tuple[float, ...],
    when: datetime.date,
    color: Color,
    path: pathlib.Path,
    tags: frozenset[str],
) -> int:
    return dep


def _golden_node() -> Any:
    return golden_node(
        dep=golden_leaf(x=1),
        weights=(0.5, 1.0),
        when=datetime.date(2024, 1, 2),
        color=Color.RED,
        path=pathlib.Path("a/b"),
        tags=frozenset({"y", "x"}),
    )


# Golden values: if one of these changes, every stored id changed. Only ever update
# them together with a KEY_SCHEMA bump.
GOLDEN_LEAF_ID = "98c35804abb7de099f00d1f30535a897a5a7901ab4248b997a61ae82fee15511"
GOLDEN_NODE_ID = "e5f4b7bac02c9e9a4a9cb83f63b25c4191749678684ee6ac9aeba3e5791d905f"
GOLDEN_NODE_SPEC = (
    '{"key_schema":1,"name":"golden_node","namespace":"golden","params":{"color":{"$enum":"red"},'
    '"dep":{"$task":"98c35804abb7de099f00d1f30535a897a5a7901ab4248b997a61ae82fee15511"},'
    '"path":{"$path":"a/b"},"tags":{"$set":["x","y"]},"weights":{"$tuple":[0.5,1.0]},'
    '"when":{"$date":"2024-01-02"}},"version":"2"}'
)
GOLDEN_BLOB_DIGEST = "ae219b85efb57cc02f49201fe7ff34c9b813f25da953e34094a9e3d27601782a"


def test_golden_leaf_id() -> None:
    """A fixed leaf spec hashes to a pinned id."""
    assert golden_leaf(x=1).id == GOLDEN_LEAF_ID


def test_golden_node_id_and_spec() -> None:
    """A fixed spec with tagged types and a dependency hashes to a pinned id and spec."""
    node = _golden_node()
    assert _hashing.canonical_json(node.spec()).decode() == GOLDEN_NODE_SPEC
    assert node.id == GOLDEN_NODE_ID


def test_golden_blob_digest() -> None:
    """A blob digest is plain blake3 of the raw bytes."""
    assert _hashing.digest_bytes(b"hello stardag") == GOLDEN_BLOB_DIGEST


def test_ids_equal_in_another_process() -> None:
    """A fresh interpreter with another hash seed derives the same ids."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(pathlib.Path(__file__).parent.parent)!r})
        import tests.test_hashing as t
        print(t.golden_leaf(x=1).id, t._golden_node().id)
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == [GOLDEN_LEAF_ID, GOLDEN_NODE_ID]


def test_default_and_explicit_values_give_one_id() -> None:
    """A defaulted parameter and the same value passed explicitly are one task."""
    assert golden_leaf(x=1) == golden_leaf(x=1, label="a")


def test_version_is_part_of_the_id() -> None:
    """Changing the version changes the id."""
    assert golden_leaf(x=1).id != golden_leaf(x=1, version="1").id


def test_namespace_is_part_of_the_id() -> None:
    """The same name and parameters in another namespace is another task."""

    class Other(sd.Task[int]):
        __namespace__ = "elsewhere"
        x: int

        def run(self) -> None:
            self.target().save(self.x)

    class Same(sd.Task[int], name_override="Other"):
        x: int

        def run(self) -> None:
            self.target().save(self.x)

    assert Other(x=1).id != Same(x=1).id


def test_unencodable_parameter_names_the_field() -> None:
    """A parameter with no canonical encoding fails at instantiation, naming the field."""

    class Opaque:
        pass

    @sd.task
    def takes_object(handle: Any) -> int:
        return 1

    with pytest.raises(sd.CanonicalEncodingError, match="handle") as info:
        takes_object(handle=Opaque())
    assert info.value.field == "handle"


def test_non_significant_field_is_not_in_the_id() -> None:
    """`StardagField(significant=False)` keeps a parameter out of the id."""
    from typing import Annotated

    class Fit(sd.Task[int]):
        alpha: float
        threads: Annotated[int, sd.StardagField(significant=False)] = 1

        def run(self) -> None:
            self.target().save(1)

    assert Fit(alpha=0.1, threads=1) == Fit(alpha=0.1, threads=8)
    assert Fit(alpha=0.1) != Fit(alpha=0.2)


def test_compat_default_keeps_old_ids() -> None:
    """A new field holding its compat_default leaves the id as it was without the field."""
    from typing import Annotated

    class Before(sd.Task[int], name_override="Evolving"):
        __namespace__ = "compat-a"
        x: int

        def run(self) -> None:
            self.target().save(1)

    class After(sd.Task[int], name_override="Evolving"):
        __namespace__ = "compat-a2"
        x: int
        mode: Annotated[str, sd.StardagField("fast")] = "fast"

        def run(self) -> None:
            self.target().save(1)

    before = {k: v for k, v in Before(x=1).spec().items() if k != "namespace"}
    after = {k: v for k, v in After(x=1).spec().items() if k != "namespace"}
    assert before == after
    assert After(x=1, mode="slow").spec()["params"]["mode"] == "slow"


class Point(BaseModel):
    x: int
    y: float


class Pair(BaseModel):
    x: int
    y: float


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.uuids(),
    st.sampled_from(list(Color)),
    st.builds(pathlib.PurePosixPath, st.text(alphabet="abc/", max_size=6)),
    st.builds(Point, x=st.integers(), y=st.floats(allow_nan=False)),
    st.builds(Pair, x=st.integers(), y=st.floats(allow_nan=False)),
)
hashable = st.one_of(st.integers(), st.text(max_size=4), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.dictionaries(hashable, inner, max_size=3),
        st.frozensets(hashable, max_size=3),
        st.sets(hashable, max_size=3),
    ),
    max_leaves=8,
)


def strict(value: Any) -> Any:
    """A structure equal for two values only if they have the same types and contents."""
    kind = type(value).__name__
    if isinstance(value, float):
        return (kind, "nan" if math.isnan(value) else repr(value))
    if isinstance(value, (list, tuple)):
        return (kind, tuple(strict(v) for v in value))
    if isinstance(value, (set, frozenset)):  # equal in Python, one parameter kind
        return ("set", frozenset(strict(v) for v in value))
    if isinstance(value, dict):
        return (kind, frozenset((strict(k), strict(v)) for k, v in value.items()))
    if isinstance(value, BaseModel):
        return (kind, strict(value.model_dump()))
    if isinstance(value, (datetime.datetime, datetime.time)):
        return (kind, value.isoformat())
    return (kind, value)


def key(value: Any) -> bytes:
    return _hashing.canonical_json(_hashing.encode(value))


@settings(max_examples=400, deadline=None)
@given(values, values)
def test_different_values_encode_differently(a: Any, b: Any) -> None:
    """Values that differ in type or content never share an encoding."""
    if strict(a) != strict(b):
        assert key(a) != key(b)
    else:
        assert key(a) == key(b)


@settings(max_examples=200, deadline=None)
@given(values)
def test_encoding_is_valid_json_and_deterministic(value: Any) -> None:
    """Encoding is JSON, and the same value always encodes the same way."""
    assert key(value) == key(value)
    json.loads(key(value))


@given(st.sets(st.integers(), max_size=10), st.dictionaries(st.text(max_size=3), st.integers()))
def test_order_does_not_matter(items: set[int], mapping: dict[str, int]) -> None:
    """Sets and dicts encode the same whatever their insertion order."""
    assert key(set(sorted(items))) == key(set(sorted(items, reverse=True)))
    reordered = dict(reversed(list(mapping.items())))
    assert key(mapping) == key(reordered)


def test_user_keys_cannot_forge_tags() -> None:
    """A user dict that looks like a tag encodes differently from the tagged value."""
    assert key({"$date": "2024-01-02"}) != key(datetime.date(2024, 1, 2))
    assert key({"$tuple": [1]}) != key((1,))


def test_distinct_kinds_of_one_value() -> None:
    """1, 1.0, True, "1", (1,) and [1] are six different parameters."""
    encoded = {key(v) for v in (1, 1.0, True, "1", (1,), [1], decimal.Decimal(1))}
    assert len(encoded) == 7


def test_uuid_and_string_differ() -> None:
    """A UUID and its string form are different parameters."""
    value = uuid.uuid4()
    assert key(value) != key(str(value))
