"""The server clock that stamps every event with when it was recorded.

It reads the system time. Only in-process code can move it, for the whole process (the demo
loader writing a portfolio with a past before the server starts, tests of time-dependent
rules); no request can.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime


def _system_time() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_time


def now() -> datetime:
    """The time the server records an event at."""
    return _clock()


@contextlib.contextmanager
def clock_set_to(clock: Callable[[], datetime]) -> Iterator[None]:
    """Record events with ``clock`` instead of the system time while this block runs."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous
