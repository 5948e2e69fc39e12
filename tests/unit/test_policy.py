"""Policy: thresholds changeable at run time, event-sourced, validated as a whole."""

from __future__ import annotations

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import Forbidden, ValidationFailed, VersionConflict
from domain.policy import PolicyValues
from tests.builders import ADMIN, EDITOR, ctx


def set_policy(app: Stagegate, **fields: object) -> object:
    return app.set_policy(c.SetPolicy.parse(fields), ctx(ADMIN))


def test_the_default_policy_is_version_zero_with_the_spec_defaults(memory_app: Stagegate) -> None:
    policy = memory_app.policy()
    assert policy.version == 0
    assert policy.values == PolicyValues(
        measurement_window_days=60, min_adoption=0.5, min_priority_score=1, stuck_after_days=30
    )


def test_each_change_is_a_new_version_and_keeps_the_other_values(memory_app: Stagegate) -> None:
    set_policy(memory_app, measurement_window_days=90, reason="audit committee")
    set_policy(memory_app, min_adoption=0.6)

    policy = memory_app.policy()
    assert policy.version == 2
    assert policy.values.measurement_window_days == 90
    assert policy.values.min_adoption == 0.6
    assert memory_app.policy_at(1).values.min_adoption == 0.5


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"measurement_window_days": 0}, "measurementWindowDays"),
        ({"min_adoption": 1.5}, "minAdoption"),
        ({"min_priority_score": 6}, "minPriorityScore"),
        ({}, ""),
        ({"reason": "nothing else"}, ""),
    ],
)
def test_invalid_or_empty_changes_are_refused_and_write_nothing(
    memory_app: Stagegate, fields: dict[str, object], path: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        set_policy(memory_app, **fields)
    assert [e.path for e in refused.value.errors] == [path]
    assert memory_app.policy().version == 0


def test_a_stale_expected_version_is_a_conflict_about_the_policy(memory_app: Stagegate) -> None:
    set_policy(memory_app, min_adoption=0.7)
    with pytest.raises(VersionConflict) as conflict:
        set_policy(memory_app, min_adoption=0.8, expected_version=0)
    assert conflict.value.message.startswith("the policy is at version 1")
    assert memory_app.policy().values.min_adoption == 0.7


def test_only_admins_set_policy(memory_app: Stagegate) -> None:
    with pytest.raises(Forbidden):
        memory_app.set_policy(c.SetPolicy.parse({"min_adoption": 0.9}), ctx(EDITOR))
    assert memory_app.policy().version == 0
