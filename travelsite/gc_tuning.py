"""Keep the garbage collector's full collections short in a long-running server process.

A full (oldest generation) collection walks every tracked object. After start-up a daphne
process holds several hundred thousand of them (modules, URL patterns, settings, the ORM's
model metadata) that live as long as the process, so each full collection cost 40-80 ms: a
stall of every socket of the process. Moving them to the permanent generation once start-up is
done (`gc.freeze()`, as CPython's docs suggest for servers) leaves the collector only what was
made since: reference cycles still get collected, in a fraction of the time.
"""

import gc

from django.urls import get_resolver


def freeze_startup_objects() -> None:
    """Load what the first request would load, then exempt all of it from collection."""
    get_resolver().url_patterns  # noqa: B018  (imports every URLconf and view module)
    gc.collect()
    gc.freeze()
