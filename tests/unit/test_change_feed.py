"""The fan-out of committed events to subscriptions (``api.graphql.feed``), without a store:
a fake follower hands pages to the feed as the real one does, from another thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from api.graphql import feed as feed_module
from api.graphql.feed import ChangeFeed, FellBehind
from domain.values import Stage
from projections.history import HistoryEntry
from projections.live import CommittedEvent, Interest


class FakeFollower:
    def __init__(self) -> None:
        self.readers: list[
            tuple[Callable[[Sequence[CommittedEvent]], None], Callable[[], Interest]]
        ] = []

    def follow(
        self,
        deliver: Callable[[Sequence[CommittedEvent]], None],
        interest: Callable[[], Interest],
    ) -> Callable[[], None]:
        reader = (deliver, interest)
        self.readers.append(reader)
        return lambda: self.readers.remove(reader)

    def wait_following(self, timeout: float) -> bool:
        return True

    def page(self, events: Sequence[CommittedEvent]) -> None:
        """Deliver a page from a thread of its own, as the follower does."""
        for deliver, _ in self.readers:
            thread = threading.Thread(target=deliver, args=(events,))
            thread.start()
            thread.join()

    def interest(self) -> Interest:
        [(_, interest)] = self.readers
        return interest()


def event(number: int, use_case: str, stage: Stage = Stage.PILOT) -> CommittedEvent:
    entry = HistoryEntry(
        notification_id=number,
        aggregate_id=use_case,
        version=number,
        event_type="QualityAlertRaised",
        recorded_at=datetime.now(UTC),
        business_time=None,
        actor_id="a",
        actor_role="editor",
        channel="graphql",
        reason=None,
        correlation_id="c",
        source=None,
        delivery_id=None,
        corrects=None,
        payload="{}",
    )
    return CommittedEvent(entry, f"key-{use_case}", stage, stage, None, None)


async def _take(events: object, count: int) -> list[int]:
    taken = []
    async for committed in events:  # type: ignore[attr-defined]
        taken.append(committed.entry.notification_id)
        if len(taken) == count:
            break
    return taken


def test_each_subscription_gets_what_it_asked_for_in_order() -> None:
    follower = FakeFollower()

    async def scenario() -> None:
        feed = ChangeFeed(follower)
        with (
            feed.subscribe(lambda _: True, "u1") as one,
            feed.subscribe(lambda e: e.stage is Stage.PILOT) as piloted,
        ):
            assert feed.subscriptions == 2
            assert follower.interest() == Interest(frozenset({"u1"}), every_event=True)
            pages = [
                [event(1, "u1"), event(2, "u2", Stage.SCALE)],
                [event(3, "u2"), event(4, "u1", Stage.SCALE)],
            ]
            for page in pages:
                await asyncio.to_thread(follower.page, page)
            assert await _take(one, 2) == [1, 4]
            assert await _take(piloted, 2) == [1, 3]
        assert feed.subscriptions == 0
        assert follower.interest().nothing

    asyncio.run(scenario())


def test_a_subscription_whose_client_falls_behind_is_ended_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "MAX_BACKLOG", 3)
    follower = FakeFollower()

    async def scenario() -> None:
        feed = ChangeFeed(follower)
        with feed.subscribe(lambda _: True) as slow, feed.subscribe(lambda _: True) as keeping_up:
            await asyncio.to_thread(follower.page, [event(n, "u") for n in (1, 2, 3)])
            assert await _take(keeping_up, 3) == [1, 2, 3]
            await asyncio.to_thread(follower.page, [event(4, "u")])
            with pytest.raises(FellBehind, match="more than 3 changes behind"):
                await _take(slow, 4)
            assert await _take(keeping_up, 1) == [4]

    asyncio.run(scenario())
