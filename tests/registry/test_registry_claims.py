"""Claim rows: who wins, who waits, what expires, what a release leaves (both backends)."""

from __future__ import annotations

from typing import Any

import stardag as sd
from stardag.registry import _claims

A = _claims.Holder("build-a", "host-a", 1)
B = _claims.Holder("build-b", "host-b", 2)
T1, T2 = "1" * 64, "2" * 64


def _claim(registry: sd.registry.Registry, holder: _claims.Holder, ttl: float = 60.0) -> list:
    return registry.write(lambda conn: _claims.claim(conn, [T2, T1, T1], holder, ttl))


def test_the_first_claimer_wins_fresh_and_the_second_waits(registry_url: str) -> None:
    """A wins both tasks as fresh claims; B, claiming the same ids, wins none."""
    registry = sd.registry.Registry(registry_url)
    assert sorted(_claim(registry, A)) == [_claims.Won(T1, True), _claims.Won(T2, True)]
    assert _claim(registry, B) == []
    seen = registry.read(lambda conn: _claims.poll(conn, [T1, T2]))
    assert {(s.task_id, s.build_id, s.state, s.expired) for s in seen} == {
        (T1, "build-a", "held", False),
        (T2, "build-a", "held", False),
    }
    registry.close()


def test_an_expired_claim_is_taken_over_and_a_heartbeat_keeps_one(registry_url: str) -> None:
    """A claim past its expiry goes to the next claimer (not fresh); a renewed one does not."""
    registry = sd.registry.Registry(registry_url)
    _claim(registry, A, ttl=-1.0)  # born expired: no sleeping, so no race with a slow machine
    assert registry.write(lambda conn: _claims.renew(conn, A, 60.0)) == 2  # the heartbeat
    assert _claim(registry, B) == []  # renewed: still A's
    assert registry.write(lambda conn: _claims.renew(conn, A, -1.0)) == 2  # A's heart stops
    assert sorted(_claim(registry, B)) == [_claims.Won(T1, False), _claims.Won(T2, False)]
    assert registry.write(lambda conn: _claims.renew(conn, A, 60.0)) == 0  # A lost them
    registry.close()


def test_released_and_failed_claims_are_free_and_keep_the_error(registry_url: str) -> None:
    """Released claims can be won again; a failed one carries its error until then."""
    registry = sd.registry.Registry(registry_url)
    _claim(registry, A)
    registry.write(lambda conn: _claims.release(conn, A, [T1], {T2: "ValueError: boom"}))
    rows = {r["task_id"]: r for r in registry.read(_claims.holders)}
    assert (rows[T1]["state"], rows[T2]["state"], rows[T2]["error"]) == (
        "released",
        "failed",
        "ValueError: boom",
    )
    assert registry.write(lambda conn: _claims.release(conn, B, [T1], {})) is None  # not B's
    assert sorted(_claim(registry, B)) == [_claims.Won(T1, False), _claims.Won(T2, False)]
    registry.close()


def test_releases_look_claims_up_by_task_id_not_through_the_builds_index(
    registry_url: str,
) -> None:
    """Each release statement finds its rows by primary key: through the build's index it
    would walk every claim the build took, per statement (quadratic in the build's size)."""
    from sqlalchemy import event

    registry = sd.registry.Registry(registry_url)
    ids = [f"{k:064x}" for k in range(40)]
    registry.write(lambda conn: _claims.claim(conn, ids, A, 60.0))
    seen: list[tuple[str, Any]] = []

    def note(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE CLAIMS"):
            seen.append((statement, params))

    event.listen(registry.engine, "before_cursor_execute", note)
    try:
        registry.write(lambda conn: _claims.release(conn, A, ids[:39], {ids[39]: "boom"}))
    finally:
        event.remove(registry.engine, "before_cursor_execute", note)
    assert len(seen) >= 2  # the finished ones, and the failed one
    explain = "EXPLAIN QUERY PLAN " if registry.is_sqlite else "EXPLAIN "
    with registry.engine.connect() as conn:
        for statement, params in seen:
            plan = conn.exec_driver_sql(explain + statement, params).fetchall()
            text = " ".join(str(part) for row in plan for part in row)
            assert "ix_claims_build_id" not in text, (statement, text)
    states = {r["task_id"]: r["state"] for r in registry.read(_claims.holders)}
    assert states == {**dict.fromkeys(ids[:39], "released"), ids[39]: "failed"}
    registry.close()
