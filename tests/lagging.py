"""Read models that lag behind the log, on purpose, for tests of the projection runners.

Every append writes its read-model rows itself, so the runners only ever work where the read
models were left behind (a rebuild, an event they could not hold, a store an earlier release
wrote). Tests of the runners make that happen explicitly with ``left_to_the_runners``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from infra.bootstrap import Services


@contextlib.contextmanager
def left_to_the_runners(services: Services) -> Iterator[None]:
    """Appends made inside write no read-model rows: the projection runners must."""
    appends = services.app.recorder.appends  # type: ignore[attr-defined]
    wired, appends.read_models = appends.read_models, None
    try:
        yield
    finally:
        appends.read_models = wired
