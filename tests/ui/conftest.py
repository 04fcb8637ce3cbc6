"""Fixtures of the dashboard tests: a served registry filled by real builds, and Chromium.

Chromium is Debian's (`/usr/bin/chromium`, installed by scripts/_system_deps.sh when
missing), driven by Playwright for Python through `executable_path`: no browser download.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import CHROMIUM, CHROMIUM_FLAGS, Page, Served, build_filled, serving

import stardag as sd


@pytest.fixture
def served(stardag_home: Path) -> Iterator[Served]:
    """The dashboard over a registry filled by real builds."""
    registry = sd.registry.open()
    ids = build_filled(registry)
    with serving(registry) as server:
        server.ids = ids
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, one per test module.

    Not one per session: Playwright's sync API runs an event loop on this thread
    while it is open, and tests after these would find it running.
    """
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/_system_deps.sh (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, served: Served, tmp_path: Path) -> Iterator[Page]:
    """A fresh browser page on the served dashboard; fails the test on any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    found = context.new_page()
    problems: list[str] = []
    found.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    found.on("pageerror", lambda e: problems.append(str(e)))
    found.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    yield Page(found, problems, served.url, shots)
    context.close()
