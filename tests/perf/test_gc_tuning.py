"""The server process exempts its start-up objects from the collector's full collections, and
collects from a timer on its event loop rather than in the middle of a message."""

import asyncio
import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from travelsite import gc_tuning

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, time
import travelsite.asgi
frozen = gc.get_freeze_count()
started = time.perf_counter()
gc.collect()
print(frozen, len(gc.get_objects()), time.perf_counter() - started)
"""


def test_importing_the_asgi_application_freezes_what_start_up_made() -> None:
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    frozen, still_tracked, _seconds = result.stdout.split()
    # Django, DRF, Channels and the project's modules: far more than a full collection then
    # has to walk.
    assert int(frozen) > 50_000
    assert int(still_tracked) < int(frozen) / 10


class Node:
    """An object that can be part of a reference cycle and be watched by a weak reference."""

    partner: "Node | None" = None


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc_tuning._collecting_on.clear()


def test_a_timer_on_the_loop_collects_what_allocation_no_longer_does(
    collector_restored: None,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        gc_tuning.collect_between_events(loop)
        gc_tuning.collect_between_events(loop)  # once per loop: every socket calls it
        assert gc.get_threshold()[0] == gc_tuning.SAFETY_THRESHOLD
        gc.collect()
        first, second = Node(), Node()
        first.partner, second.partner = second, first
        cycle = weakref.ref(first)
        del first, second
        # Enough new objects for a young collection, too few for the automatic one.
        kept: list[list[int]] = [[] for _ in range(gc_tuning.YOUNG_OBJECTS * 2)]
        assert cycle() is not None  # allocation alone no longer collects it
        loop.run_until_complete(asyncio.sleep(gc_tuning.INTERVAL_S * 4))
        assert cycle() is None
        assert len(kept) == gc_tuning.YOUNG_OBJECTS * 2
    finally:
        loop.close()


@override_settings(GC_BETWEEN_EVENTS=False)
def test_switched_off_the_collector_keeps_cpythons_thresholds(collector_restored: None) -> None:
    loop = asyncio.new_event_loop()
    try:
        before = gc.get_threshold()
        gc_tuning.collect_between_events(loop)
        assert gc.get_threshold() == before
        assert not loop._scheduled  # type: ignore[attr-defined]  # no timer was set
    finally:
        loop.close()
