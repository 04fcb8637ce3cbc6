"""Remotes that did not answer, remembered for a minute across processes.

Read-through asks the active remote about every task it lacks. When the remote is
down, each attempt costs the client's retries (seconds), so the first process to find
it down notes the outage in `$STARDAG_HOME/remote-outages.json` (URL -> until when,
since when, why), and every process skips that remote until then, saying so once.
The file is small and advisory: written by temp-then-rename, a lost or stale entry
costs at most one more try.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from stardag._config import stardag_home

FILE_NAME = "remote-outages.json"
DOWN_SECONDS = 60.0  # a remote that failed to answer is skipped this long

logger = logging.getLogger("stardag.remote")

_SKIP: dict[tuple[str, str], float] = {}  # (home, url) -> skipped until (time.time())


def _path() -> Path:
    return Path(stardag_home()) / FILE_NAME


def _read() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_down(name: str, url: str) -> bool:
    """Whether to skip this remote now; the first skip in a process says why, once."""
    key = (stardag_home(), url)
    now = time.time()
    if key in _SKIP:
        return _SKIP[key] > now
    entry = _read().get(url)
    until = entry.get("until") if isinstance(entry, dict) else None
    _SKIP[key] = until if isinstance(until, (int, float)) and until > now else 0.0
    if _SKIP[key] > now and isinstance(entry, dict):
        logger.warning(
            "remote %s did not answer at %s (%s); skipping it until %s and computing locally",
            name,
            _clock(entry.get("since")),
            entry.get("why", "?"),
            _clock(until),
        )
    return _SKIP[key] > now


def note_down(url: str, why: str) -> None:
    """Remember that a remote did not answer, in this process and for others."""
    now = time.time()
    _SKIP[(stardag_home(), url)] = now + DOWN_SECONDS
    entries = {k: v for k, v in _read().items() if _live(v, now)}
    entries[url] = {"since": now, "until": now + DOWN_SECONDS, "why": why[:300]}
    path = _path()
    temp = path.with_name(f"{FILE_NAME}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
        temp.replace(path)
    except OSError as exc:  # advisory: this process still skips it
        logger.debug("could not note the outage of %s in %s: %s", url, path, exc)


def _live(entry: object, now: float) -> bool:
    until = entry.get("until") if isinstance(entry, dict) else None
    return isinstance(until, (int, float)) and until > now


def _clock(when: object) -> str:
    if not isinstance(when, (int, float)):
        return "?"
    return time.strftime("%H:%M:%S", time.localtime(when))
