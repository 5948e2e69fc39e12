"""The committed events of this process's follower of the log, fanned out to subscribers.

One ``ChangeFeed`` per application: the follower (``projections.live.ChangeSource``) reads
each page of committed events once, on a thread of its own, and hands it to the event loop;
here each page is put in the queue of every subscription it concerns, in the log's order.
Nothing here reads the store: a subscription waits on its queue.

A subscription that cannot keep up (its client reads slower than changes commit) is not
skipped ahead silently: past ``MAX_BACKLOG`` undelivered events it ends with an error saying
so (``FellBehind``), and the client subscribes again and reads what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from projections.live import ChangeSource, CommittedEvent, Interest

T = TypeVar("T")

MAX_BACKLOG = 1_000
"""Events a subscription may have waiting for its client before it is ended."""
SHARED = 512
"""Recent events' payloads and executions kept to be shared (``shared``, ``executed_once``)."""
FOLLOWING_SECONDS = 10.0
"""How long a new subscription waits for the log to be followed before it is held anyway."""


class FellBehind(Exception):
    """A subscription's client read slower than changes committed, by ``MAX_BACKLOG``."""


class Subscription:
    """One subscriber's queue of the committed events it asked for, in the log's order."""

    def __init__(self, wants: Callable[[CommittedEvent], bool]) -> None:
        self._wants = wants
        self._waiting: deque[CommittedEvent] = deque()
        self._arrived = asyncio.Event()
        self._fell_behind = False

    def offer(self, events: Sequence[CommittedEvent]) -> None:
        """On the event loop: the events of a page, of which it keeps those it wants."""
        if self._fell_behind:
            return
        before = len(self._waiting)
        self._waiting.extend(event for event in events if self._wants(event))
        if len(self._waiting) > MAX_BACKLOG:
            self._fell_behind = True
            self._waiting.clear()
        if self._fell_behind or len(self._waiting) > before:
            self._arrived.set()

    async def __aiter__(self) -> AsyncIterator[CommittedEvent]:
        while True:
            while not self._waiting and not self._fell_behind:
                self._arrived.clear()
                await self._arrived.wait()
            if self._fell_behind:
                raise FellBehind(
                    f"This subscription fell more than {MAX_BACKLOG} changes behind its "
                    "client and was ended; subscribe again (and read what was missed with a "
                    "query)."
                )
            yield self._waiting.popleft()


class ChangeFeed:
    """Fans out committed events to the subscriptions of one application (module docstring).

    Every method runs on the event loop; only ``_from_follower`` is called from the
    follower's thread.
    """

    def __init__(self, source: ChangeSource) -> None:
        self._source = source
        self._by_use_case: dict[str, set[Subscription]] = {}
        self._every_event: set[Subscription] = set()
        self._interest = Interest()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unfollow: Callable[[], None] | None = None
        self._payloads: OrderedDict[tuple[int, str], tuple[CommittedEvent, Any]] = OrderedDict()
        self._executions: OrderedDict[Hashable, tuple[object, asyncio.Future[Any]]] = OrderedDict()

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are open now."""
        return len(self._every_event) + sum(len(s) for s in self._by_use_case.values())

    @contextlib.contextmanager
    def subscribe(
        self, wants: Callable[[CommittedEvent], bool], use_case_id: str | None = None
    ) -> Iterator[Subscription]:
        """A subscription to the events ``wants`` keeps, from now until the block ends: of
        the use case ``use_case_id`` (loaded as each event leaves it) or, without one, of
        every use case."""
        self._follow()
        subscription = Subscription(wants)
        group = (
            self._every_event
            if use_case_id is None
            else self._by_use_case.setdefault(use_case_id, set())
        )
        group.add(subscription)
        self._interest_changed()
        try:
            yield subscription
        finally:
            group.discard(subscription)
            if use_case_id is not None and not group:
                self._by_use_case.pop(use_case_id, None)
            self._interest_changed()

    async def following(self) -> None:
        """Return once every commit from now on reaches the subscriptions: the source reads
        the log from a position read after it was first asked to follow. A subscription is
        held only then; had it been held before, commits made while the follower was still
        connecting were passed over. Given up after ``FOLLOWING_SECONDS`` (the store is not
        answering: the follower catches up from its position once it does)."""
        if self._source.wait_following(0):
            return
        await run_in_threadpool(self._source.wait_following, FOLLOWING_SECONDS)

    def shared(self, event: CommittedEvent, kind: str, build: Callable[[CommittedEvent], T]) -> T:
        """One payload of ``kind`` per event for every subscription it goes to (so that
        ``executed_once`` finds their executions the same)."""
        key = (id(event), kind)
        found = self._payloads.get(key)
        if found is None:
            found = self._payloads[key] = (event, build(event))  # kept: its id stays its own
            if len(self._payloads) > SHARED:
                self._payloads.popitem(last=False)
        return found[1]

    async def executed_once(
        self, key: Hashable, keep: object, execute: Callable[[], Awaitable[T]]
    ) -> T:
        """``execute()``'s answer, started by the first caller with ``key`` and awaited by
        every other (``keep`` is held meanwhile, so the ids in ``key`` stay its own): the
        subscriptions of many clients asking the same of one event cost one execution."""
        found = self._executions.get(key)
        if found is None:
            found = self._executions[key] = (keep, asyncio.ensure_future(execute()))
            if len(self._executions) > SHARED:
                self._executions.popitem(last=False)
        # Shielded: one subscriber leaving does not cancel what the others await.
        return await asyncio.shield(found[1])

    def close(self) -> None:
        """The application is stopping: no more pages."""
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    def _follow(self) -> None:
        if self._unfollow is None:
            self._loop = asyncio.get_running_loop()
            self._unfollow = self._source.follow(self._from_follower, self._current_interest)

    def _current_interest(self) -> Interest:
        return self._interest  # replaced whole, never changed: safe to read from a thread

    def _interest_changed(self) -> None:
        self._interest = Interest(frozenset(self._by_use_case), bool(self._every_event))

    def _from_follower(self, events: Sequence[CommittedEvent]) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            loop.call_soon_threadsafe(self._fan_out, events)

    def _fan_out(self, events: Sequence[CommittedEvent]) -> None:
        for subscription in list(self._every_event):
            subscription.offer(events)
        by_use_case: dict[str, list[CommittedEvent]] = {}
        for event in events:
            if event.entry.aggregate_id in self._by_use_case:
                by_use_case.setdefault(event.entry.aggregate_id, []).append(event)
        for use_case_id, concerning in by_use_case.items():
            for subscription in list(self._by_use_case.get(use_case_id, ())):
                subscription.offer(concerning)
