"""What other systems can subscribe to hear about (webhooks): stage moves, deployments,
quality alerts, and gate refusals, which no event records."""

from __future__ import annotations

from enum import StrEnum


class Notification(StrEnum):
    """What other systems can subscribe to hear about (webhooks)."""

    STAGE_ADVANCED = "stagegate.stage.advanced"
    STAGE_RETURNED = "stagegate.stage.returned"
    USE_CASE_RETIRED = "stagegate.use_case.retired"
    GATE_BLOCKED = "stagegate.gate.blocked"
    DEPLOYMENT_RECORDED = "stagegate.deployment.recorded"
    DEPLOYMENT_ROLLED_BACK = "stagegate.deployment.rolled_back"
    QUALITY_ALERT_RAISED = "stagegate.quality.alert_raised"
    QUALITY_ALERT_RESOLVED = "stagegate.quality.alert_resolved"
