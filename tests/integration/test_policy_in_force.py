"""A command is judged by the policy in force when it commits, whichever process changed it.

The application remembers the policy between commands (``infra.caches.CachedPolicy``): the
store checks, in the transaction appending a command's events, that the policy it was judged
by is still the latest, and the command is judged again where it is not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain import commands as c
from domain.errors import GateBlocked
from domain.gates import RequirementCode
from domain.values import OwnerRole, Stage
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from tests.builders import ADMIN, PRIORITY, Journey, ctx


@pytest.fixture
def two_processes(settings: Settings) -> Iterator[tuple[Services, Services]]:
    """Two applications on one database, as two server processes would be."""
    first, second = bootstrap(settings), bootstrap(settings)
    yield first, second
    second.close()
    first.close()


def test_a_command_is_judged_by_a_policy_another_process_set_since(
    two_processes: tuple[Services, Services],
) -> None:
    first, second = two_processes
    journey = Journey(second.app).register()
    journey.issue(c.ScorePriority, **PRIORITY)  # 5/4/4: enough under the default policy
    journey.issue(
        c.AssignOwner,
        role=OwnerRole.TECHNICAL,
        person={"id": "tess@example.com", "team": "AI platform"},
    )
    assert second.app.policies.for_judging().version == 0  # remembered by the second

    first.app.set_policy(c.SetPolicy.parse({"minPriorityScore": 5}), ctx(ADMIN))

    with pytest.raises(GateBlocked) as refused:
        second.app.execute(c.AdvanceStage.parse({"key": journey.key}), ctx())
    assert refused.value.policy_version == 1
    assert [r.code for r in refused.value.unmet] == [RequirementCode.PRIORITY_SCORED]
    assert second.app.use_case(journey.key).state.stage is Stage.PROPOSED
    assert second.app.policies.for_judging().version == 1
