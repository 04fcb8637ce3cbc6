"""Claims in a build: take a task's claim before it runs, so builders sharing a registry
compute each task once.

The engine hands every task that became ready to the `Claimer` instead of running
it. The claimer's own thread claims what became ready together in one registry
transaction, and tells the engine:

- `won`: run it. A task won by taking over a released or expired claim is checked
  for completeness first, since its last holder may have finished it.
- `done_elsewhere`: another builder held it and finished it; a cache hit here.
- `failed_elsewhere`: another builder held it and it failed there while this one waited.

So that a build does not wait on the registry before each task, the claimer also
claims *ahead*: a pending task whose every dependency is finished or claimed by this
build is claimed before it is ready, in batches, level by level. No other builder
can run it before this one anyway (it needs those dependencies first, and they are
this build's), so claiming it early takes nothing from anyone; when it becomes
ready, the engine runs it at once (`want` answers True). A task claimed ahead that
will not run after all (a dependency failed) is released as the engine skips it.
Releases of finished tasks wait up to `ClaimConfig.poll` to go out together (with
the next claims, if any); a failed task's release goes out at once.

While another builder holds a task, this one runs its other ready work and polls
that claim with backoff. A heartbeat renews every claim this build holds, in one
statement, so a claim outlives its TTL only while its holder is alive; one left by a
killed builder expires and is taken over. The invariant: a task is run only under a
claim this build won and found incomplete after winning (a claim won fresh, by a
task nobody had claimed before, needs no second look).
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stardag._errors import RegistryError
from stardag.build._claim_config import ClaimConfig
from stardag.registry import _claimstate, _lite
from stardag.registry._claimstate import FAILED, HELD, Won
from stardag.registry._lite import LiteRegistry
from stardag.task._base import BaseTask

if TYPE_CHECKING:
    from stardag.registry._db import Registry

logger = logging.getLogger("stardag.build")


AHEAD_BATCH = 500  # most tasks claimed ahead per transaction: ready ones never wait long
# Most ready tasks claimed per transaction: the 50,000 leaves of a 100,000-task tree become
# ready at once, and one statement for all of them held every row it read back at once.
WANTED_BATCH = 1000
# Most claims won ahead and not yet run: a 100,000-task tree would otherwise claim most of
# itself ahead (ids held in `_held` and `_ahead`, megabytes); past it, tasks are claimed
# when they become ready.
AHEAD_WINDOW = 5000


class ClaimNode(Protocol):
    """What the claimer needs of an engine node."""

    id: str
    task: BaseTask


class ClaimEngine(Protocol):
    """What the claimer tells the engine (each call takes the engine's lock itself)."""

    def claim_won(self, node: Any) -> None:
        """Run the node: this build holds its claim."""

    def claim_done_elsewhere(self, node: Any, holder: str | None) -> None:
        """The node is complete: another builder computed it (`holder`: its build id)."""

    def claim_failed_elsewhere(self, node: Any, holder: str, error: str) -> None:
        """The node failed in another builder while this one waited for it."""

    def ahead_of(self, nodes: list[Any], held: set[str]) -> list[Any]:
        """Pending dependents of `nodes` whose every dependency is finished or in `held`."""

    def may_run(self, node: Any) -> bool:
        """Whether a node claimed ahead may still run in this build (not skipped)."""


@dataclass
class _Waiting:
    node: Any
    holder: str
    wait: float
    due: float


@dataclass
class _Work:
    wanted: list[Any] = field(default_factory=list)
    ahead: list[Any] = field(default_factory=list)  # to claim before they are ready
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def urgent(self) -> bool:
        return bool(self.wanted or self.ahead or self.failed)

    def empty(self) -> bool:
        return not (self.urgent() or self.done)


class Claimer:
    """One build's claims: a thread that claims, waits, renews and releases."""

    def __init__(
        self,
        registry: Registry | LiteRegistry,
        config: ClaimConfig,
        build_id: str,
        engine: ClaimEngine,
    ) -> None:
        self.registry = registry
        self.config = config
        self.holder = _claimstate.Holder(build_id, socket.gethostname(), os.getpid())
        self._ops = _claim_ops(registry)
        self.engine = engine
        self._cond = threading.Condition()
        self._work = _Work()
        self._closed = False
        self._held: set[str] = set()  # the claimer thread's own
        # Claims won ahead, not yet handed to the engine: task id -> won fresh (under _cond).
        self._ahead: dict[str, bool] = {}
        self._claiming: set[str] = set()  # being claimed ahead right now (under _cond)
        self._early: dict[str, Any] = {}  # of those, the nodes that became ready meanwhile
        self._release_due: float | None = None  # when the finished tasks' releases go out
        self._waiting: dict[str, _Waiting] = {}
        self._next_beat = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"stardag-claims-{build_id[:8]}", daemon=True
        )

    # -- the engine's side ---------------------------------------------------------------
    def start(self) -> None:
        """Start the claimer's thread, in the build's context (tasks it submits see it)."""
        self._next_beat = time.monotonic() + self.config.heartbeat
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=self._thread.name, daemon=True
        )
        self._thread.start()

    def want(self, node: Any) -> bool:
        """A node is ready: True if this build won its claim fresh already (run it now).

        Otherwise the claimer claims it, and the engine hears back through `claim_won`
        and its siblings.
        """
        with self._cond:
            if self._ahead.get(node.id):
                del self._ahead[node.id]
                return True
            if node.id in self._claiming:
                self._early[node.id] = node  # started (or claimed again) once that is done
                return False
            self._work.wanted.append(node)
            self._cond.notify()
            return False

    def together(self) -> threading.Condition:
        """Hold this while wanting several nodes: the claimer takes them in one batch."""
        return self._cond

    def release(self, task_id: str, error: BaseException | None) -> None:
        """A claimed task finished (`error` None) or failed: release its claim."""
        with self._cond:
            if error is None:
                self._release_soon(task_id)
            else:
                self._work.failed[task_id] = f"{type(error).__qualname__}: {error}"
                self._cond.notify()

    def forget(self, task_id: str) -> None:
        """A pending node will not run in this build: release its claim if won ahead."""
        with self._cond:
            if self._ahead.pop(task_id, None) is not None:
                self._release_soon(task_id)

    def _release_soon(self, task_id: str) -> None:
        """Release within `poll` seconds, with whatever else goes out then (under _cond)."""
        self._work.done.append(task_id)
        if self._release_due is None:
            self._release_due = time.monotonic() + self.config.poll
            self._cond.notify()  # the claimer's thread may sleep past it otherwise

    def close(self) -> None:
        """Release every claim still held and stop the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    # -- the claimer's thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            work, closed = self._take()
            if closed:
                work.done += sorted(self._held - set(work.done) - set(work.failed))
                work.wanted, work.ahead = [], []
            self._exchange(work)
            if closed:
                return
            self._beat()
            self._poll()

    def _take(self) -> tuple[_Work, bool]:
        """What to send now: claims at once; finished tasks' releases when due, or with them."""
        with self._cond:
            if not self._work.urgent() and not self._closed:
                self._cond.wait(self._timeout())
            due = self._release_due is not None and time.monotonic() >= self._release_due
            if not (self._work.urgent() or self._closed or due):
                return _Work(), False
            work, self._work = self._work, _Work()
            self._release_due = None
            work.wanted, self._work.wanted = (
                work.wanted[:WANTED_BATCH],
                work.wanted[WANTED_BATCH:],
            )
            work.ahead, self._work.ahead = work.ahead[:AHEAD_BATCH], work.ahead[AHEAD_BATCH:]
            return work, self._closed

    def _timeout(self) -> float:
        soonest = self._next_beat
        if self._release_due is not None:
            soonest = min(soonest, self._release_due)
        if self._waiting:
            soonest = min(soonest, min(w.due for w in self._waiting.values()))
        return max(0.0, soonest - time.monotonic())

    def _exchange(self, work: _Work) -> None:
        """Release what finished, claim what became ready and what comes next, in one
        transaction; then claim further ahead from what this build won."""
        if work.empty():
            return
        mine = [node for node in work.wanted if node.id in self._held]  # claimed ahead
        wanted = [node for node in work.wanted if node.id not in self._held]
        ids = [node.id for node in wanted]
        held, asked = self._held, set(ids)  # no copy of every claim held per exchange
        ahead = [node for node in work.ahead if node.id not in held and node.id not in asked]
        with self._cond:
            self._claiming = {node.id for node in ahead}
        try:
            won, won_ahead = self.registry.write(
                lambda conn: self._swap(conn, work, ids, [n.id for n in ahead])
            )
        except RegistryError as exc:
            logger.warning(
                "claims in registry %s failed (%s): %d ready tasks run without claims",
                self.registry.safe_url,
                exc,
                len(ids),
            )
            won, won_ahead = [Won(task_id, fresh=False) for task_id in ids], []
        self._held -= set(work.done) | set(work.failed)
        winners = {w.task_id: w for w in won}
        gained, early = self._keep_ahead(ahead, won_ahead)
        for node in wanted:
            if node.id in winners:
                self._held.add(node.id)
                gained.append(node)
        for node in mine:
            with self._cond:
                fresh = self._ahead.pop(node.id, False)
            self._start(node, fresh)
        for node, fresh in early:
            self._start(node, fresh)
        for node in wanted:
            if node.id in winners:
                self._start(node, winners[node.id].fresh)
        self._look_ahead(gained)
        lost = [node for node in wanted if node.id not in winners]
        if lost:
            self._wait_for(lost)

    def _swap(
        self, conn: Any, work: _Work, ids: list[str], ahead: list[str]
    ) -> tuple[list[Won], list[Won]]:
        ttl = self.config.ttl
        self._ops.release(conn, self.holder, work.done, work.failed)
        won = list(self._ops.claim(conn, ids, self.holder, ttl)) if ids else []
        won_ahead = list(self._ops.claim(conn, ahead, self.holder, ttl)) if ahead else []
        return won, won_ahead

    def _keep_ahead(
        self, nodes: list[Any], won: list[Won]
    ) -> tuple[list[Any], list[tuple[Any, bool]]]:
        """Note the claims won ahead; give back those the engine skipped meanwhile.

        Returns the nodes kept, and those that became ready while being claimed (to
        start now, with whether their claim was won fresh).
        """
        fresh = {w.task_id: w.fresh for w in won}
        kept: list[Any] = []
        early: list[tuple[Any, bool]] = []
        with self._cond:  # `want` and `forget` look at `_ahead` and `_claiming` under it
            self._claiming = set()
            for node in nodes:
                ready = self._early.pop(node.id, None)
                if node.id not in fresh:
                    if ready is not None:  # another builder holds it: claim it as others
                        self._work.wanted.append(ready)
                    continue  # else claimed again once ready
                self._held.add(node.id)
                if ready is not None:
                    early.append((ready, fresh[node.id]))
                elif self.engine.may_run(node):
                    self._ahead[node.id] = fresh[node.id]
                else:
                    self._release_soon(node.id)
                    continue
                kept.append(node)
            self._early = {}
        return kept, early

    def _look_ahead(self, won: list[Any]) -> None:
        """Queue the dependents that the claims just won make claimable ahead."""
        with self._cond:
            full = len(self._ahead) >= AHEAD_WINDOW
        if not won or full:
            return
        nodes = self.engine.ahead_of(won, self._held)
        if nodes:
            with self._cond:
                self._work.ahead.extend(nodes)

    def _start(self, node: Any, fresh: bool) -> None:
        """Run a won node, unless its last holder finished it (then it is a cache hit)."""
        if not fresh and _complete(node.task):
            self.release(node.id, None)
            self.engine.claim_done_elsewhere(node, None)
        else:
            self.engine.claim_won(node)

    def _wait_for(self, nodes: list[Any]) -> None:
        held = self._read(lambda conn: self._ops.poll(conn, [n.id for n in nodes])) or []
        holders = {seen.task_id: seen.build_id for seen in held}
        due = time.monotonic() + self.config.poll
        for node in nodes:
            holder = holders.get(node.id, "?")
            self._waiting[node.id] = _Waiting(node, holder, self.config.poll, due)

    def _beat(self) -> None:
        if time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self.config.heartbeat
        if not self._held:
            return
        try:
            self.registry.write(lambda conn: self._ops.renew(conn, self.holder, self.config.ttl))
        except RegistryError as exc:
            logger.warning("heartbeat of %d claims failed: %s", len(self._held), exc)

    def _poll(self) -> None:
        """Ask again about held tasks whose wait is over; re-claim the released ones."""
        clock = time.monotonic()
        due = [w for w in self._waiting.values() if w.due <= clock]
        if not due:
            return
        seen = self._read(lambda conn: self._ops.poll(conn, [w.node.id for w in due]))
        if seen is None:
            return
        states = {s.task_id: s for s in seen}
        again: list[Any] = []
        for waiting in due:
            state = states.get(waiting.node.id)
            if state is not None and state.state == HELD and not state.expired:
                waiting.wait = min(waiting.wait * 2, self.config.max_poll)
                waiting.due = clock + waiting.wait
                continue
            del self._waiting[waiting.node.id]
            if state is not None and state.state == FAILED:
                self.engine.claim_failed_elsewhere(waiting.node, state.build_id, state.error or "")
            else:
                again.append(waiting.node)
        if again:
            with self._cond:
                self._work.wanted.extend(again)

    def _read(self, work: Callable[[Any], Any]) -> Any:
        try:
            return self.registry.read(work)
        except RegistryError as exc:
            logger.warning("reading claims failed (%s); asking again shortly", exc)
            return None


def _claim_ops(registry: Registry | LiteRegistry) -> Any:
    """The module that claims in `registry`: `_lite` (sqlite3) or `_claims` (SQLAlchemy)."""
    if isinstance(registry, LiteRegistry):
        return _lite
    from stardag.registry import _claims

    return _claims


def _complete(task: BaseTask) -> bool:
    try:
        return bool(task.complete())
    except Exception:  # noqa: BLE001  # an unreadable output is not complete: run it
        return False
