"""The use-case boundary: authorise a command, load its aggregate, run it, save it.

``Stagegate`` is the only way anything is written. It turns library errors into domain errors
(a duplicate key, a lost race) and never reads the process environment: the infrastructure
passes every setting in.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    Recording,
)
from eventsourcing.utils import Environment, EnvType
from pydantic import ValidationError

from domain import clock
from domain.commands import (
    Command,
    LinkExternalModel,
    RegisterUseCase,
    SetPolicy,
    UseCaseCommand,
)
from domain.errors import (
    DomainError,
    Forbidden,
    GateBlocked,
    NotFound,
    PolicyChanged,
    Rule,
    RuleViolated,
    StoreUnavailable,
    ValidationFailed,
    VersionConflict,
)
from domain.gates import GateStatus, gate_status
from domain.metadata import Actor, CommandContext
from domain.policy import POLICY_ID, Policy, PolicyInForce, PolicyValues
from domain.state import UseCaseState
from domain.usecase import UseCase, use_case_id
from domain.values import Channel, RegistrySystem, Role

log = logging.getLogger(__name__)

READERS = frozenset(Role) - {Role.INTEGRATION}


@dataclass(frozen=True)
class BatchItem:
    key: str
    command: Callable[[UseCaseState], UseCaseCommand]
    """Builds the command from the use case as it stands (may raise a DomainError)."""
    ctx: CommandContext
    command_type: str = "Unknown"
    """The command's type name where the caller knows it before it is built (a refusal
    raised before building, e.g. NotFound, is observed under it)."""


@dataclass(frozen=True)
class Accepted:
    key: str
    version: int
    """The use case's version after this item's event."""
    use_case: UseCase
    """The use case as this item left it (not to be changed)."""
    judged_by: PolicyInForce
    """The policy the command was judged by: the store checked it was still in force when
    the command committed, so an answer judges the use case's gate by it, with no read."""


@dataclass(frozen=True)
class Judged:
    """A command's use case as it left it, and the policy it was judged by (in force when
    it committed: ``Appended.judged_by``)."""

    use_case: UseCase
    policy: PolicyInForce


BatchOutcome = Accepted | DomainError

GateRefusalAnnouncer = Callable[[str, GateBlocked, Actor], None]
"""Tells those who subscribed that a forward move was refused (key, refusal, who asked): no
event records a refusal, so the application says so itself. Wired by the infrastructure."""
CommandObserver = Callable[[str, BaseException | None], None]
"""Told how each command ended, once, where its answer is final: the command's type name, and
None (accepted) or what refused or failed it. A command retried (a lost race in a batch, a
policy changed meanwhile) is told once, for its last attempt. Wired by the infrastructure
(its metrics); it must not raise."""
UNCONDITIONAL_ATTEMPTS = 3
POLICY_ATTEMPTS = 5
"""Times a command is judged again because the policy changed before it committed."""


@dataclass(frozen=True)
class Appended:
    """What a save hands the store beside its events, so the store can write, in the same
    transaction, what it keeps about them (its read models: ``infra.readmodels.inline``).

    ``judged_by`` is the policy the commands were judged by; the store refuses the write with
    ``PolicyChanged`` if another policy is in force by the time it commits. None where no
    policy judged anything (a policy change itself).
    """

    events: Sequence[Any]
    """The domain events, in the order they are stored."""
    aggregates: Mapping[UUID, Any]
    """Every aggregate saved, as it stands after its events."""
    judged_by: PolicyInForce | None


class PolicySource(Protocol):
    """Where the application gets the policy in force (the infrastructure may cache it)."""

    def for_judging(self) -> PolicyInForce:
        """The policy to judge a command by: the store verifies it when the command commits,
        so this may be a remembered one."""

    def in_force(self) -> PolicyInForce:
        """The policy in force now, as the store holds it (for answers to readers)."""

    def forget(self) -> None:
        """What was remembered is stale: read the store next time."""


class CheckedOut(dict[str, UseCase]):
    """Use cases checked out, by key; ``as_saved`` names those handed out as this process
    last saved them, without reading the store (another writer may have changed them
    since)."""

    as_saved: frozenset[str] = frozenset()


class UseCaseSource(Protocol):
    """Where batches get the use cases they change (the infrastructure may keep them)."""

    def check_out(self, keys: Sequence[str]) -> Mapping[str, UseCase]:
        """Those of these keys that exist, in this caller's hands alone until ``check_in``:
        each at its latest version, or, named in ``CheckedOut.as_saved``, as this process
        last saved it. A batch finds out that such a copy is stale where its change conflicts
        at the commit, or, before answering a refusal judged on it, by ``still_current``;
        it then judges again on copies ``read`` from the store."""

    def read(self, keys: Sequence[str]) -> Mapping[str, UseCase]:
        """``check_out``, each read from the store at its latest version."""

    def check_in(self, use_cases: Iterable[UseCase]) -> None:
        """Use cases as saved (or untouched), for the next ``check_out``; one whose change
        failed is not returned."""

    def still_current(self, versions: Mapping[str, int]) -> bool:
        """Whether the store holds each of these use cases (by key) at this version still."""

    def to_read(self, key: str) -> UseCase | None:
        """A use case only to be read, where the source has a cheaper way than the
        repository's (which may then cache it); None to go through the repository."""


class LoadedUseCases:
    """Use cases loaded through the repository each time: the default ``UseCaseSource``."""

    def __init__(self, app: Stagegate) -> None:
        self._app = app

    def check_out(self, keys: Sequence[str]) -> dict[str, UseCase]:
        found: dict[str, UseCase] = {}
        for key in dict.fromkeys(keys):
            try:
                found[key] = self._app.use_case(key)
            except NotFound:
                continue
        return found

    def read(self, keys: Sequence[str]) -> dict[str, UseCase]:
        return self.check_out(keys)

    def check_in(self, use_cases: Iterable[UseCase]) -> None:
        """Nothing is kept."""

    def still_current(self, versions: Mapping[str, int]) -> bool:
        """Each was read from the store as it was checked out."""
        return True

    def to_read(self, key: str) -> UseCase | None:
        return None


class StoredPolicy:
    """The policy read from the store every time (no cache): the default."""

    def __init__(self, app: Stagegate) -> None:
        self._app = app

    def for_judging(self) -> PolicyInForce:
        return self.in_force()

    def in_force(self) -> PolicyInForce:
        return self._app.stored_policy()

    def forget(self) -> None:
        """Nothing is remembered."""


class Stagegate(Application[UUID]):
    """The lifecycle service: every command of the API goes through ``execute``."""

    name = "stagegate"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {UseCase: 50}

    def __init__(self, env: EnvType | None = None, snapshot_interval: int | None = None) -> None:
        if snapshot_interval is not None:
            # Instance attribute: another Stagegate in the same process keeps its own.
            self.snapshotting_intervals = {UseCase: snapshot_interval}  # type: ignore[misc]
        super().__init__(env)
        self.use_case_source: UseCaseSource = LoadedUseCases(self)
        self.announce_gate_refusal: GateRefusalAnnouncer | None = None
        self.observe_command: CommandObserver | None = None
        self.policies: PolicySource = StoredPolicy(self)
        self.linked_use_case: Callable[[RegistrySystem, str], str | None] | None = None
        """The key of the use case an external model is linked to (the read models know);
        None: links are not checked across use cases (the in-memory store of unit tests)."""

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Unlike the library default, ignore os.environ: settings arrive only through `env`.
        values: dict[str, str] = dict(type(self).env)
        if self.snapshotting_intervals:
            values["IS_SNAPSHOTTING_ENABLED"] = "y"
        values.update(env or {})
        return Environment(name, values)

    # --- writing --------------------------------------------------------------------------

    def execute(self, command: Command, ctx: CommandContext) -> UseCase:
        """Run one command for one caller; raises a DomainError and writes nothing on refusal."""
        return self.execute_judged(command, ctx).use_case

    def execute_judged(self, command: Command, ctx: CommandContext) -> Judged:
        """``execute``, also answering the policy the command was judged by."""
        try:
            judged = self._execute(command, ctx)
        except BaseException as error:
            self.observe_outcome(type(command).__name__, error)
            raise
        self.observe_outcome(type(command).__name__, None)
        return judged

    def observe_outcome(self, command_type: str, outcome: BaseException | None) -> None:
        """Tell ``observe_command`` how a command ended: for a caller that gives up on one
        after the application's own attempts (they are not told: a retry may follow)."""
        if self.observe_command is not None:
            self.observe_command(command_type, outcome)

    def _execute(self, command: Command, ctx: CommandContext) -> Judged:
        authorize(command, ctx)
        try:
            with store_errors_as_unavailable():
                if isinstance(command, RegisterUseCase):
                    return self._register(command, ctx)
                if isinstance(command, UseCaseCommand):
                    return self._run(command, ctx)
        except GateBlocked as refusal:
            assert isinstance(command, UseCaseCommand)
            self._announce(command.key, refusal, ctx.actor)
            raise
        raise TypeError(f"not a use-case command: {type(command).__name__}")

    def _announce(self, key: str, refusal: GateBlocked, actor: Actor) -> None:
        """Announce a gate refusal; the refusal is the answer whatever happens here."""
        if self.announce_gate_refusal is None:
            return
        try:
            self.announce_gate_refusal(key, refusal, actor)
        except Exception as error:
            log.warning("a gate refusal of '%s' was not announced: %r", key, error)

    def execute_batch(self, items: Sequence[BatchItem]) -> list[BatchOutcome]:
        """Judge each item on its own; save every accepted one in one transaction.

        Items for the same use case apply in order to the same aggregate. Raises
        VersionConflict (nothing written) if any aggregate lost a race meanwhile; the caller
        then handles the items one by one (and those attempts are what is observed).
        """
        command_types = [item.command_type for item in items]
        try:
            with store_errors_as_unavailable():
                outcomes = self._execute_batch(items, command_types)
        except VersionConflict:
            raise
        except BaseException as error:
            for command_type in command_types:
                self.observe_outcome(command_type, error)
            raise
        for command_type, outcome in zip(command_types, outcomes, strict=True):
            refusal = outcome if isinstance(outcome, DomainError) else None
            self.observe_outcome(command_type, refusal)
        return outcomes

    def _execute_batch(
        self, items: Sequence[BatchItem], command_types: list[str]
    ) -> list[BatchOutcome]:
        for attempt in range(1, POLICY_ATTEMPTS + 1):
            try:
                return self._judge_and_save_batch(items, command_types)
            except PolicyChanged:
                self.policies.forget()
                if attempt == POLICY_ATTEMPTS:
                    raise self._policy_kept_changing() from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _judge_and_save_batch(
        self, items: Sequence[BatchItem], command_types: list[str]
    ) -> list[BatchOutcome]:
        """``command_types`` gets each item's command type name as soon as it is built."""
        try:
            return self._judge_and_save(items, command_types, read=False)
        except _StaleCopy:
            # Judged on a copy kept from this process's last save, which another writer has
            # changed since: nothing was written; judge again on what the store holds.
            return self._judge_and_save(items, command_types, read=True)

    def _judge_and_save(
        self, items: Sequence[BatchItem], command_types: list[str], read: bool
    ) -> list[BatchOutcome]:
        """Judge and save with the use cases checked out (or, with ``read``, read from the
        store); raises ``_StaleCopy`` (nothing written) where a copy kept as saved proved
        stale."""
        policy = self.policies.for_judging()
        source = self.use_case_source
        keys = [item.key for item in items]
        found = source.read(keys) if read else source.check_out(keys)
        as_saved = found.as_saved if isinstance(found, CheckedOut) else frozenset()
        checked_out = {key: use_case.version for key, use_case in found.items()}
        loaded: dict[str, UseCase] = {}
        outcomes: list[BatchOutcome] = []
        refused: set[str] = set()
        blocked: list[tuple[str, GateBlocked, Actor]] = []
        for index, item in enumerate(items):
            try:
                use_case = loaded.get(item.key) or found.get(item.key)
                if use_case is None:
                    raise NotFound(item.key)
                command = item.command(use_case.state)
                command_types[index] = type(command).__name__
                authorize(command, item.ctx)
                _check_expectations(command, use_case)
                self._check_link_is_free(command)
                meta = item.ctx.meta(reason=command.reason_text, corrects=command.corrects)
                command.execute(use_case, meta, policy)
            except DomainError as error:
                outcomes.append(error)
                refused.add(item.key)
                if isinstance(error, GateBlocked):
                    blocked.append((item.key, error, item.ctx.actor))
                continue
            loaded[item.key] = use_case
            # The answer keeps the use case as this item left it: later items, and later
            # batches that check it out, go on changing the aggregate itself.
            answer = use_case.as_it_stands()
            outcomes.append(Accepted(item.key, use_case.version, answer, judged_by=policy))
        # A refusal is answered only if judged on the use case as the store holds it (what is
        # accepted needs no such look: its commit would conflict).
        judged_on = {key: checked_out[key] for key in refused & as_saved}
        if judged_on and not source.still_current(judged_on):
            raise _StaleCopy()
        for key, refusal, actor in blocked:
            self._announce(key, refusal, actor)
        if loaded:
            conflict = VersionConflict("", None, None, subject="a use case in the batch")
            try:
                self._save(*loaded.values(), conflict=conflict, judged_by=policy)
            except PolicyChanged:
                source.check_in(u for k, u in found.items() if k not in refused and k not in loaded)
                raise
            except VersionConflict:
                if as_saved & loaded.keys():
                    raise _StaleCopy() from None
                raise
        # Saved (or untouched) use cases go back; one a refused command ran on might hold a
        # half-applied change, so it is read again next time.
        source.check_in(use_case for key, use_case in found.items() if key not in refused)
        return outcomes

    def set_policy(self, command: SetPolicy, ctx: CommandContext) -> PolicyInForce:
        try:
            authorize(command, ctx)
            with store_errors_as_unavailable():
                policy = self._set_policy(command, ctx)
        except BaseException as error:
            self.observe_outcome(type(command).__name__, error)
            raise
        self.observe_outcome(type(command).__name__, None)
        return policy

    def _set_policy(self, command: SetPolicy, ctx: CommandContext) -> PolicyInForce:
        changes = command.changes()
        if not changes:
            raise ValidationFailed.single("", "give at least one policy value to change")
        policy = self._load_policy()
        current_version = policy.version if policy else 0
        if command.expected_version is not None and command.expected_version != current_version:
            raise VersionConflict(
                "policy", command.expected_version, current_version, subject="the policy"
            )
        base = policy.values if policy else PolicyValues()
        try:
            values = PolicyValues.model_validate({**base.model_dump(), **changes})
        except ValidationError as error:
            raise ValidationFailed.from_pydantic(error) from None
        meta = ctx.meta(reason=command.reason)
        if policy is None:
            policy = Policy.define(values, meta)
        else:
            policy.change(values, meta)
        try:
            self._save(
                policy,
                conflict=VersionConflict("policy", None, None, subject="the policy"),
                judged_by=None,
            )
        finally:
            self.policies.forget()
        return PolicyInForce(version=policy.version, values=policy.values)

    def _register(self, command: RegisterUseCase, ctx: CommandContext) -> Judged:
        taken = RuleViolated(
            Rule.KEY_TAKEN, f"The key '{command.key}' is already taken by another use case."
        )
        for attempt in range(1, POLICY_ATTEMPTS + 1):
            use_case = UseCase.register(
                command.key, command.title, command.description, command.business_unit, ctx.meta()
            )
            # Judged by nothing, but its summary reports its gate under the policy.
            policy = self.policies.for_judging()
            try:
                self._save(use_case, conflict=taken, judged_by=policy)
            except PolicyChanged:
                self.policies.forget()
                if attempt == POLICY_ATTEMPTS:
                    raise self._policy_kept_changing() from None
                continue
            return Judged(use_case, policy)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, command: UseCaseCommand, ctx: CommandContext) -> Judged:
        # A command that named no expectedVersion is judged afresh against whatever won a
        # race, so it may simply be retried; one that did must see its conflict.
        attempts = 1 if command.expected_version is not None else UNCONDITIONAL_ATTEMPTS
        attempt = policy_changes = 0
        while True:
            attempt += 1
            use_case = self.use_case(command.key)
            expected = command.expected_version
            _check_expectations(command, use_case)
            self._check_link_is_free(command)
            meta = ctx.meta(reason=command.reason_text, corrects=command.corrects)
            policy = self.policies.for_judging()
            command.execute(use_case, meta, policy)
            try:
                self._save(
                    use_case,
                    conflict=VersionConflict(command.key, expected, None),
                    judged_by=policy,
                )
            except VersionConflict:
                if attempt >= attempts:
                    raise
                continue
            except PolicyChanged:
                # Judged by a policy no longer in force: judge it again, by the one that is.
                self.policies.forget()
                policy_changes += 1
                if policy_changes == POLICY_ATTEMPTS:
                    raise self._policy_kept_changing() from None
                attempt -= 1
                continue
            return Judged(use_case, policy)

    def _check_link_is_free(self, command: UseCaseCommand) -> None:
        """A model in an external registry is linked to one use case at most: its events
        must name one. (Judged from the read models, written with each link; two links made
        in the same instant could both pass, and an event for that model is then refused as
        ambiguous, naming both.)"""
        if not isinstance(command, LinkExternalModel) or self.linked_use_case is None:
            return
        holder = self.linked_use_case(command.system, command.name)
        if holder is not None and holder != command.key:
            raise RuleViolated(
                Rule.MODEL_LINKED_ELSEWHERE,
                f"The {command.system.value} model '{command.name}' is linked to use case "
                f"'{holder}'; unlink it there first.",
            )

    @staticmethod
    def _policy_kept_changing() -> VersionConflict:
        return VersionConflict("policy", None, None, subject="the policy")

    def _save(
        self, *aggregates: Any, conflict: DomainError, judged_by: PolicyInForce | None
    ) -> None:
        """Save, translating the store's refusals: a lost race is ``conflict``. Raises
        PolicyChanged (nothing written) if ``judged_by`` is no longer the policy in force."""
        try:
            self.save(*aggregates, judged_by=judged_by)
        except IntegrityError:
            # Another writer appended the same version (or registered the key) first.
            raise conflict from None

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        events = processing_event.events
        saved_with = processing_event.saved_kwargs
        saved_with["appended"] = Appended(
            events=list(events),
            aggregates=dict(processing_event.aggregates),
            judged_by=saved_with.pop("judged_by", None),
        )
        try:
            return super()._record(processing_event)
        except IntegrityError:
            # The store retries an insert whose connection failed; if that failure hid a
            # commit, the retry meets its own events. Those are this write, committed: say
            # so, rather than report a conflict (or, unconditionally retried, write twice).
            if not self._already_stored(events):
                raise
            log.warning("a write reported as a conflict had committed; answered as written")
            return []
        except (OperationalError, InterfaceError) as error:
            # The store gave up (lock not granted, or the database went away, perhaps after
            # the commit): ask it what it holds before saying anything was not written.
            try:
                stored = self._already_stored(events)
            except (OperationalError, InterfaceError):
                raise StoreUnavailable(written=None) from error
            if not stored:
                raise StoreUnavailable(written=False) from error
            log.warning("a write whose answer was lost had committed; answered as written")
            return []

    def _already_stored(self, events: Sequence[Any]) -> bool:
        """Whether exactly these events, byte for byte, are what the store holds."""
        for event in events:
            wanted = self.mapper.to_stored_event(event)
            version = wanted.originator_version
            stored = list(
                self.recorder.select_events(wanted.originator_id, gt=version - 1, lte=version)
            )
            if [(s.topic, bytes(s.state)) for s in stored] != [(wanted.topic, wanted.state)]:
                return False
        return bool(events)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # The events are committed by now; a failed snapshot must not turn success into an error.
        try:
            self._snapshot_as_saved(processing_event)
        except Exception:
            log.exception("snapshot failed; loading stays correct, only slower")

    def _snapshot_as_saved(self, processing_event: ProcessingEvent[UUID]) -> None:
        """A snapshot of each aggregate whose events just saved reached a multiple of its
        interval, taken of the aggregate as saved (at its version after the save, past the
        multiple where one save holds several events: a snapshot at any version loads the
        same). The library's ``_take_snapshots`` reads the aggregate back from the store
        first (its last snapshot and up to 49 events): 3.6 % of a command's time in process,
        for the state already in hand."""
        if self.snapshots is None:
            return
        due: dict[UUID, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if aggregate is not None and interval and event.originator_version % interval == 0:
                due[event.originator_id] = aggregate
        if due:
            self.snapshots.put(
                [type(aggregate).Snapshot.take(aggregate) for aggregate in due.values()]
            )

    # --- reading --------------------------------------------------------------------------

    def use_case(self, key: str, version: int | None = None, *, to_read: bool = False) -> UseCase:
        """The use case at its latest version (or at ``version``).

        ``to_read``: the caller only reads it, so a cached copy is handed out as it is, not
        deep-copied first (for a long-lived use case the copy costs more than the rest of a
        query). It must not be changed. One not in the cache is put there only when it is
        read a second time: a portal browsing thousands of use cases would otherwise churn
        the cache, and every aggregate it evicts is garbage for the collector's slowest
        generation (full collections of 100+ ms every few seconds, measured).
        """
        if to_read and version is None:
            read = self.use_case_source.to_read(key)
            if read is not None:
                return read
        try:
            use_case: UseCase = self.repository.get(
                use_case_id(key), version=version, deepcopy_from_cache=not to_read
            )
        except AggregateNotFoundError:
            raise NotFound(key) from None
        assert isinstance(use_case, UseCase)
        return use_case

    def policy(self) -> PolicyInForce:
        """The policy in force now."""
        with store_errors_as_unavailable():
            return self.policies.in_force()

    def stored_policy(self) -> PolicyInForce:
        """The policy in force, read from the store."""
        with store_errors_as_unavailable():
            policy = self._load_policy()
        if policy is None:
            return PolicyInForce.default()
        return PolicyInForce(version=policy.version, values=policy.values)

    def policy_at(self, version: int) -> PolicyInForce:
        """The policy as it stood at ``version``; version 0 is the built-in default."""
        if version == 0:
            return PolicyInForce.default()
        policy: Policy = self.repository.get(POLICY_ID, version=version)
        return PolicyInForce(version=policy.version, values=policy.values)

    def gate(self, use_case: UseCase) -> GateStatus:
        return gate_status(use_case.state, self.policy(), clock.now())

    def _load_policy(self) -> Policy | None:
        try:
            policy: Policy = self.repository.get(POLICY_ID)
        except AggregateNotFoundError:
            return None
        return policy


class _StaleCopy(Exception):
    """A batch was judged on a copy of a use case that another writer had changed since
    this process saved it; nothing was written."""


@contextlib.contextmanager
def store_errors_as_unavailable() -> Iterator[None]:
    """A database that is unreachable, or a lock not granted in time, while a command reads or
    writes: nothing was written, and the caller may retry (``StoreUnavailable``)."""
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        log.warning("the event store did not answer a command: %s", error)
        raise StoreUnavailable() from None


def _check_expectations(command: UseCaseCommand, use_case: UseCase) -> None:
    """What a command expects of its use case's version (``expectedVersion``, ``corrects``)."""
    expected = command.expected_version
    if expected is not None and expected != use_case.version:
        raise VersionConflict(command.key, expected, use_case.version)
    if command.corrects is not None and command.corrects > use_case.version:
        raise RuleViolated(
            Rule.CORRECTS_UNKNOWN_VERSION,
            f"'corrects' names version {command.corrects}, but '{command.key}' has "
            f"only {use_case.version} events.",
        )


def authorize(command: Command, ctx: CommandContext) -> None:
    """Role rules; rules about *who* (named approver, business owner) live in the aggregate."""
    role = ctx.actor.role
    name = type(command).__name__
    if role is Role.INTEGRATION:
        if ctx.channel is not Channel.CLOUDEVENTS or not command.integration_may_post:
            raise Forbidden(
                f"Integration tokens post lifecycle events through /v1/events; they cannot "
                f"issue {name}."
            )
        return
    if role not in command.allowed_roles:
        allowed = ", ".join(sorted(r.value for r in command.allowed_roles))
        raise Forbidden(f"Role {role.value} cannot issue {name}; it needs one of: {allowed}.")


def authorize_read(actor: Actor) -> None:
    if actor.role not in READERS:
        raise Forbidden(f"Role {actor.role.value} cannot read use cases.")
