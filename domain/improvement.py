"""Whether a use case's value is proven: each baseline metric against its latest after-state.

An *outcome* metric must be better than its baseline, in the metric's direction, by at least
the policy's minimum improvement (``min_improvement``; 0, the default, means strictly better).
A *guardrail* may be worse than its baseline by no more than the policy's tolerance
(``guardrail_tolerance``, default 5 %). Both are relative to the baseline. A baseline of 0 has
no relative change, so there any change counts as infinitely large in its direction.

Only an after-state measured inside the measurement window counts (the rule of
``AFTER_STATE_MEASURED``): the same one the gate, the read side and ``asOf`` all use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.policy import PolicyValues
from domain.state import UseCaseState
from domain.values import Baseline, BaselineKind, Direction, Measurement

_SLACK = 1e-9


@dataclass(frozen=True)
class MetricImprovement:
    """One baseline metric against its latest after-state in the window."""

    baseline: Baseline
    after: Measurement | None
    """The latest after-state measured inside the window, if any."""
    change: float | None
    """After-state minus baseline, signed so that positive is better."""
    relative_change: float | None
    """``change`` over the baseline's magnitude (0.1 = 10 % better; ±inf from a baseline
    of 0)."""
    counts: bool
    """Whether it meets the policy: an outcome improved enough, a guardrail held."""

    @property
    def metric(self) -> str:
        return self.baseline.metric

    def describe(self, policy: PolicyValues) -> str:
        """The metric, its baseline and after-state, and by how much it falls short."""
        b = self.baseline
        direction = "lower" if b.direction is Direction.LOWER_IS_BETTER else "higher"
        head = f"{b.metric} ({b.kind.value}, {direction} is better): baseline {b.value:g} {b.unit}"
        if self.after is None or self.relative_change is None:
            return f"{head}, no after-state measured in the window"
        after = f"after-state {self.after.value:g} ({self.after.measured_at.date().isoformat()})"
        moved = _percent(self.relative_change)
        if b.kind is BaselineKind.OUTCOME:
            needed = (
                "strictly better"
                if policy.min_improvement == 0
                else f"at least {policy.min_improvement:.1%} better"
            )
            short = (
                ""
                if policy.min_improvement == 0 or math.isinf(self.relative_change)
                else f", {policy.min_improvement - self.relative_change:.1%} short"
            )
            return f"{head}, {after}: {moved}; it needs to be {needed}{short}"
        return (
            f"{head}, {after}: {moved}; a guardrail may be at most"
            f" {policy.guardrail_tolerance:.1%} worse,"
            f" {-self.relative_change - policy.guardrail_tolerance:.1%} over"
        )


def _percent(relative: float) -> str:
    if math.isinf(relative):
        return "better from a baseline of 0" if relative > 0 else "worse from a baseline of 0"
    word = "better" if relative > 0 else "worse" if relative < 0 else "unchanged"
    if relative == 0:
        return word
    return f"{abs(relative):.1%} {word}"


def window_start(state: UseCaseState, policy: PolicyValues) -> datetime | None:
    """From when an after-state counts: the window after the first production deployment."""
    first = state.first_production_deployment_at
    return None if first is None else first + timedelta(days=policy.measurement_window_days)


def improvements(state: UseCaseState, policy: PolicyValues) -> list[MetricImprovement]:
    """Every baseline metric, by name, against its latest after-state in the window."""
    not_before = window_start(state, policy)
    found = []
    for metric in sorted(state.baselines):
        baseline = state.baselines[metric]
        after = None if not_before is None else state.after_state_for(metric, not_before)
        found.append(_judged(baseline, after, policy))
    return found


def _judged(
    baseline: Baseline, after: Measurement | None, policy: PolicyValues
) -> MetricImprovement:
    if after is None:
        return MetricImprovement(baseline, None, None, None, counts=False)
    change = after.value - baseline.value
    if baseline.direction is Direction.LOWER_IS_BETTER:
        change = -change
    if baseline.value != 0:
        relative = change / abs(baseline.value)
    else:
        relative = math.copysign(math.inf, change) if change else 0.0
    # A hair of slack, so that 10 % better meets a 10 % minimum despite binary fractions.
    if baseline.kind is BaselineKind.OUTCOME:
        counts = relative > 0 and relative >= policy.min_improvement - _SLACK
    else:
        counts = -relative <= policy.guardrail_tolerance + _SLACK
    return MetricImprovement(baseline, after, change, relative, counts=counts)
