"""Group commit: commands that arrive while a commit is in flight are committed together.

Every append takes the log's lock and commits once, so one command per transaction caps a
server at one commit's round trips per command, however many callers wait. Here a caller
whose command finds no commit in flight leads: it takes every command queued so far (its own
first), has the application judge them in arrival order, each against its use case as the
earlier ones left it (``Stagegate.execute_batch``), and commits all that were accepted in one
transaction. Callers who arrive meanwhile queue; when the commit is done the next one in the
queue leads the next group. Each caller gets its own answer: a refusal fails only its own
command, and commands for one use case commit in the order they arrived.

Where the group loses a race with another process (``VersionConflict``: nothing written),
its commands are run again one by one, each with the retries a command alone gets.
Registration and policy changes are not grouped: they are rare, and each stands alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from domain.application import Accepted, BatchItem, BatchOutcome, Judged, Stagegate
from domain.commands import Command, UseCaseCommand
from domain.errors import DomainError, VersionConflict
from domain.metadata import CommandContext
from domain.state import UseCaseState
from domain.usecase import UseCase
from infra import tracing

MAX_GROUP = 200
"""Commands per transaction at most (a larger queue is committed in several)."""


@dataclass
class _Waiting:
    command: UseCaseCommand
    ctx: CommandContext
    answered: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    """Set instead of an answer: this caller leads the next group."""
    outcome: BatchOutcome | None = None
    error: BaseException | None = None

    def item(self) -> BatchItem:
        command = self.command

        def build(_state: UseCaseState) -> UseCaseCommand:
            return command

        return BatchItem(
            key=command.key, command=build, ctx=self.ctx, command_type=type(command).__name__
        )

    def settle(
        self, outcome: BatchOutcome | None = None, error: BaseException | None = None
    ) -> None:
        self.outcome, self.error = outcome, error
        self.leads = False
        self.answered.set()

    def answer(self) -> Judged:
        if self.error is not None:
            raise self.error
        outcome = self.outcome
        if isinstance(outcome, DomainError):
            raise outcome
        assert isinstance(outcome, Accepted)
        return Judged(outcome.use_case, outcome.judged_by)


_tracer = trace.get_tracer("stagegate.commands")


class GroupCommit:
    """Runs commands through ``app``, grouping those that arrive together (module doc)."""

    def __init__(self, app: Stagegate, max_group: int = MAX_GROUP) -> None:
        self.app = app
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._leading = False

    def execute(self, command: Command, ctx: CommandContext) -> UseCase:
        """What ``Stagegate.execute`` does, committed with whatever arrived meanwhile."""
        return self.execute_judged(command, ctx).use_case

    def execute_judged(self, command: Command, ctx: CommandContext) -> Judged:
        """What ``Stagegate.execute_judged`` does, committed with whatever arrived meanwhile."""
        if not tracing.recording():
            return self._execute(command, ctx)
        with _tracer.start_as_current_span(
            f"command {type(command).__name__}",
            attributes={
                "stagegate.command": type(command).__name__,
                "stagegate.use_case.key": str(getattr(command, "key", "")),
            },
            # A refusal is an answer, not a failure of the service: its outcome says it.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                judged = self._execute(command, ctx)
            except DomainError as error:
                span.set_attribute("stagegate.outcome", type(error).__name__)
                raise
            except BaseException:
                span.set_attribute("stagegate.outcome", "failed")
                span.set_status(StatusCode.ERROR)
                raise
            span.set_attribute("stagegate.outcome", "accepted")
            return judged

    def _execute(self, command: Command, ctx: CommandContext) -> Judged:
        if not isinstance(command, UseCaseCommand):
            return self.app.execute_judged(command, ctx)
        waiting = _Waiting(command, ctx)
        with self._lock:
            self._queue.append(waiting)
            leads = not self._leading
            self._leading = True
        if not leads:
            waiting.answered.wait()
            leads = waiting.leads
        if leads:
            self._lead()
            waiting.answered.wait()  # answered: it was in the group just committed
        return waiting.answer()

    def _lead(self) -> None:
        with self._lock:
            group = self._queue[: self.max_group]
            del self._queue[: self.max_group]
        try:
            self._commit(group)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            if successor is not None:
                successor.leads = True
                successor.answered.set()

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            outcomes = self.app.execute_batch([waiting.item() for waiting in group])
        except VersionConflict:
            # Another process won a race for one of these use cases; nothing was written.
            for waiting in group:
                self._alone(waiting)
            return
        except BaseException as error:
            for waiting in group:
                waiting.settle(error=error)
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            waiting.settle(outcome=outcome)

    def _alone(self, waiting: _Waiting) -> None:
        try:
            judged = self.app.execute_judged(waiting.command, waiting.ctx)
        except BaseException as error:
            waiting.settle(error=error)
            return
        use_case = judged.use_case
        waiting.settle(
            outcome=Accepted(use_case.state.key, use_case.version, use_case, judged.policy)
        )
