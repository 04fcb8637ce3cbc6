"""`stardag status`, `show` and `cat`."""

from __future__ import annotations

import json

import cli_tasks
import pytest
from cli_support import invoke, shell

import stardag as sd


@pytest.fixture(autouse=True)
def built() -> None:
    """The pipeline, built and recorded."""
    sd.build(cli_tasks.pipeline)


def test_status_says_complete_with_the_last_run() -> None:
    """A built task is complete; its output digest and last run are shown."""
    result = invoke("status", cli_tasks.summed.id[:10])
    assert result.exit_code == 0, result.output
    assert "cli_tasks.total" in result.stdout and "complete" in result.stdout
    assert "last run computed" in result.stdout


def test_status_of_an_unbuilt_task_named_by_module_attr() -> None:
    """`module:attr` works for a task never built: not complete."""
    result = invoke("status", "cli_tasks:other", "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["task_id"] == cli_tasks.other.id and facts["complete"] is False


def test_show_gives_spec_output_build_code_and_a_preview() -> None:
    """Every section of `show`, and the value itself."""
    result = invoke("show", "cli_tasks:summed")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for part in ("spec", '"$task"', "output", "digest", "produced by", "code", "value"):
        assert part in out
    assert str(sum(range(cli_tasks.BIG))) in out
    assert "cli_tasks:total" in out  # module:qualname of its code


def test_show_json_has_sizes_and_the_producing_build() -> None:
    """`--json` carries the same facts as data."""
    result = invoke("show", cli_tasks.base.id, "--json")
    facts = json.loads(result.stdout)
    assert facts["output"]["size_raw"] > 4096 and not facts["output"]["inline"]
    assert facts["produced_by"]["status"] == "succeeded"
    assert facts["fingerprint"] and facts["preview"].startswith("[0, 1, 2")


def test_cat_writes_the_raw_bytes_of_an_output_or_a_blob() -> None:
    """A task's output and a digest's blob come out verified and byte for byte."""
    by_task = invoke("cat", "cli_tasks:base")
    assert json.loads(by_task.stdout_bytes) == list(range(cli_tasks.BIG))
    record = cli_tasks.base.target().record()
    assert record is not None
    by_digest = invoke("cat", record.digest)
    assert by_digest.stdout_bytes == by_task.stdout_bytes
    small = invoke("cat", cli_tasks.summed.id)  # an inline output
    assert small.stdout_bytes == str(sum(range(cli_tasks.BIG))).encode()
    inline = cli_tasks.summed.target().record()
    assert inline is not None and inline.inline is not None
    assert invoke("cat", inline.digest).stdout_bytes == small.stdout_bytes  # no blob file


def test_cat_of_a_corrupt_blob_fails_without_writing() -> None:
    """A damaged blob is an error (exit 1), not bad bytes on stdout."""
    record = cli_tasks.base.target().record()
    assert record is not None
    store = cli_tasks.base.target().store
    path = store.backend.abspath(f"objects/{record.digest[:2]}/{record.digest[2:]}")  # type: ignore[attr-defined]
    with open(path, "r+b") as f:
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 0xFF]))
    result = invoke("cat", "cli_tasks:base")
    assert result.exit_code == 1 and result.stdout_bytes == b""
    assert "corrupt" in result.stderr


def test_status_show_and_cat_from_a_fresh_shell() -> None:
    """The console script answers each of them."""
    status = shell("status", cli_tasks.pipeline.id[:12])
    assert status.returncode == 0 and "complete" in status.stdout, status.stderr
    show = shell("show", "cli_tasks:pipeline")
    assert show.returncode == 0 and "total " in show.stdout, show.stderr
    cat = shell("cat", "cli_tasks:pipeline")
    assert cat.returncode == 0 and cat.stdout.startswith("total ")  # a str is stored as text
