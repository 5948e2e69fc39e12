"""What other systems can subscribe to hear about (webhooks): stage moves, deployments,
quality alerts, and gate refusals, which no event records."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic.alias_generators import to_camel


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


def camel_cased(document: Any) -> Any:
    """``document`` with every object member name in camelCase, at any depth.

    A notification's data is the event as stored (``from_stage``, ``meta.actor_id``), whose
    names are the log's and cannot change; a receiver reads the API's one convention, as
    GraphQL and the CloudEvents data write it. Values are left as they are."""
    if isinstance(document, dict):
        return {to_camel(name): camel_cased(value) for name, value in document.items()}
    if isinstance(document, list):
        return [camel_cased(value) for value in document]
    return document
