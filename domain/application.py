"""The use-case boundary: authorise a command, load its aggregate, run it, save it.

``Stagegate`` is the only way anything is written. It turns library errors into domain errors
(a duplicate key, a lost race) and never reads the process environment: the infrastructure
passes every setting in.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment, EnvType

from domain.commands import Command, RegisterUseCase, SetPolicy, UseCaseCommand
from domain.errors import Forbidden, NotFound, Rule, RuleViolated, VersionConflict
from domain.gates import GateStatus, gate_status
from domain.metadata import Actor, CommandContext
from domain.policy import POLICY_ID, Policy, PolicyInForce, PolicyValues
from domain.usecase import UseCase, use_case_id
from domain.values import Channel, Role

log = logging.getLogger(__name__)

READERS = frozenset(Role) - {Role.INTEGRATION}


class Stagegate(Application[UUID]):
    """The lifecycle service: every command of the API goes through ``execute``."""

    name = "stagegate"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {UseCase: 50}

    def __init__(self, env: EnvType | None = None, snapshot_interval: int | None = None) -> None:
        if snapshot_interval is not None:
            # Instance attribute: another Stagegate in the same process keeps its own.
            self.snapshotting_intervals = {UseCase: snapshot_interval}  # type: ignore[misc]
        super().__init__(env)

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
        authorize(command, ctx)
        if isinstance(command, RegisterUseCase):
            return self._register(command, ctx)
        if isinstance(command, UseCaseCommand):
            return self._run(command, ctx)
        raise TypeError(f"not a use-case command: {type(command).__name__}")

    def set_policy(self, command: SetPolicy, ctx: CommandContext) -> PolicyInForce:
        authorize(command, ctx)
        meta = ctx.meta(reason=command.reason)
        changes = command.model_dump(exclude={"expected_version", "reason"}, exclude_none=True)
        policy = self._load_policy()
        current_version = policy.version if policy else 0
        if command.expected_version is not None and command.expected_version != current_version:
            raise VersionConflict("policy", command.expected_version, current_version)
        base = policy.values if policy else PolicyValues()
        values = base.model_copy(update=changes)
        if policy is None:
            policy = Policy.define(values, meta)
        else:
            policy.change(values, meta)
        try:
            self.save(policy)
        except IntegrityError:
            raise VersionConflict("policy", command.expected_version, None) from None
        return PolicyInForce(version=policy.version, values=policy.values)

    def _register(self, command: RegisterUseCase, ctx: CommandContext) -> UseCase:
        use_case = UseCase.register(
            command.key, command.title, command.description, command.business_unit, ctx.meta()
        )
        try:
            self.save(use_case)
        except IntegrityError:
            raise RuleViolated(
                Rule.KEY_TAKEN, f"The key '{command.key}' is already taken by another use case."
            ) from None
        return use_case

    def _run(self, command: UseCaseCommand, ctx: CommandContext) -> UseCase:
        use_case = self.use_case(command.key)
        if command.expected_version is not None and command.expected_version != use_case.version:
            raise VersionConflict(command.key, command.expected_version, use_case.version)
        if command.corrects is not None and command.corrects > use_case.version:
            raise RuleViolated(
                Rule.CORRECTS_UNKNOWN_VERSION,
                f"'corrects' names version {command.corrects}, but '{command.key}' has only "
                f"{use_case.version} events.",
            )
        meta = ctx.meta(reason=command.reason_text, corrects=command.corrects)
        command.execute(use_case, meta, self.policy())
        try:
            self.save(use_case)
        except IntegrityError:
            # Another writer appended the same version first: optimistic concurrency.
            raise VersionConflict(command.key, command.expected_version, None) from None
        return use_case

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # The events are committed by now; a failed snapshot must not turn success into an error.
        try:
            super()._take_snapshots(processing_event)
        except Exception:
            log.exception("snapshot failed; loading stays correct, only slower")

    # --- reading --------------------------------------------------------------------------

    def use_case(self, key: str, version: int | None = None) -> UseCase:
        try:
            use_case: UseCase = self.repository.get(use_case_id(key), version=version)
        except AggregateNotFoundError:
            raise NotFound(key) from None
        assert isinstance(use_case, UseCase)
        return use_case

    def policy(self) -> PolicyInForce:
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
        return gate_status(use_case.state, self.policy())

    def _load_policy(self) -> Policy | None:
        try:
            policy: Policy = self.repository.get(POLICY_ID)
        except AggregateNotFoundError:
            return None
        return policy


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
