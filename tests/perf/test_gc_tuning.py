"""The server process exempts its start-up objects from the collector's full collections."""

import os
import subprocess
import sys
from pathlib import Path

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
