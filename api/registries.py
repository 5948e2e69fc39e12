"""Model registries' own webhooks, turned into the commands a person would issue.

``POST /v1/registries/mlflow`` takes MLflow's model-registry webhooks as MLflow sends them
(``mlflow/webhooks/delivery.py``): a JSON envelope ``{entity, action, timestamp, data}``,
signed in ``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` over
``"{X-MLflow-Delivery-Id}.{X-MLflow-Timestamp}.{body}"`` with the webhook's secret. MLflow
sends no bearer token: the signature, with the secret stagegate keeps for that model
(``stagegate registry secret mlflow MODEL``), is the authentication; a timestamp more than five
minutes off is refused, so a captured delivery cannot be replayed later. A model must be linked
to a use case (``linkExternalModel``) for its events to be applied.

What each event can prove, and so what it becomes:

- ``model_version.created``: a candidate version, labelled ``MODEL/vN`` (a classic model: no
  prompt), as ``registerCandidateVersion``. From ``deployment`` on, a new version goes through
  change management, so the domain refuses it there, naming the rule.
- ``model_version_alias.created``: a deployment of that version, as ``recordDeployment``, to
  the environment the alias names (``production``, ``prod`` or ``champion`` mean production,
  any other alias is an environment of that name): teams that serve ``models:/NAME@alias``
  deploy by moving the alias. A production deployment of a version not approved is refused.
- Tags, alias deletions and new registered models prove nothing stagegate judges (a tag is
  free text; passing an evaluation is judged from results, never taken from a label): they
  are acknowledged (202, ``ignored``) and change nothing. Evaluations come from the job that
  computed the metrics, posting ``stagegate.evaluation.completed`` with the run's metrics
  (docs/integrations.md shows how); the webhook carries none to build one from.

Each applied event goes through the same exactly-once ingestion as ``POST /v1/events``: source
``mlflow``, id the delivery id (MLflow's retries repeat it), RFC 9457 problems, the actor
``mlflow:MODEL`` with the integration role.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentPrincipal
from api.events.envelope import PostedEvent, delivery_fingerprint
from api.events.ingest import Ingestion, Outcome
from api.events.kinds import EventData, build_command
from api.limits import Refused, loads_json
from api.problems import problem, problem_response
from domain import commands as c
from domain.metadata import Actor
from domain.state import UseCaseState
from domain.values import RegistrySystem, Role

router = APIRouter(tags=["registries"])

MLFLOW_SOURCE = "mlflow"
SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_HEADER = "x-mlflow-delivery-id"
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
"""How far a delivery's signed timestamp may be from the server's clock."""
PRODUCTION_ALIASES = frozenset({"production", "prod", "champion"})


class MlflowVersionCreated(EventData):
    model_name: str
    version: str

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RegisterCandidateVersion,
            set(),
            key=key,
            version={
                "label": version_label(self.model_name, self.version),
                "model": f"models:/{self.model_name}/{self.version}",
            },
        )


class MlflowAliasCreated(EventData):
    model_name: str
    version: str
    alias: str

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        environment = "production" if self.alias.lower() in PRODUCTION_ALIASES else self.alias
        return build_command(
            c.RecordDeployment,
            {"deployed_at"},
            key=key,
            version=version_label(self.model_name, self.version),
            environment=environment.lower(),
            deployed_at=occurred_at,
        )


def version_label(model_name: str, version: str) -> str:
    """The stagegate label of a registry's model version: ``MODEL/vN``."""
    return f"{model_name}/v{version}"


MAPPED: dict[tuple[str, str], type[EventData]] = {
    ("model_version", "created"): MlflowVersionCreated,
    ("model_version_alias", "created"): MlflowAliasCreated,
}


@router.post(
    "/v1/registries/mlflow",
    summary="MLflow model-registry webhooks (signed with the model's secret)",
    description=__doc__,
    responses={
        200: {"description": "Applied (or applied the first time it was delivered)."},
        202: {"description": "Acknowledged: the event proves nothing stagegate records."},
        400: {"description": "Missing MLflow headers or a malformed payload."},
        401: {"description": "No secret for the model, a bad signature or a stale timestamp."},
        404: {"description": "The model is linked to no use case."},
        409: {"description": "Same delivery id, other content; or a model linked twice."},
        422: {"description": "Refused by a gate or a rule."},
    },
)
async def mlflow_webhook(request: Request) -> Response:
    body = await request.body()
    missing = [
        name
        for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER)
        if not request.headers.get(name)
    ]
    if missing:
        return problem_response(
            problem(
                "missing-mlflow-headers",
                "Missing MLflow headers",
                400,
                f"An MLflow webhook delivery carries {', '.join(missing)}; this request lacks "
                "them. Send it from an MLflow webhook that has a secret.",
            )
        )
    try:
        payload = await run_in_threadpool(loads_json, body)
    except Refused as refused:
        return problem_response(refused.document)
    read = _read_envelope(payload)
    if isinstance(read, dict):
        return problem_response(read)
    entity, action, name, data = read
    backends = request.app.state.backends
    secret = await run_in_threadpool(backends.registry_secret, RegistrySystem.MLFLOW, name)
    refusal = _check_signature(request, body, secret, name)
    if refusal is not None:
        return problem_response(refusal)
    kind = MAPPED.get((entity, action))
    if kind is None:
        return JSONResponse(
            status_code=202,
            content={
                "status": "ignored",
                "event": f"{entity}.{action}",
                "reason": "It proves nothing stagegate records: tags are free text, and "
                "passing an evaluation is judged from its results. Only new model versions "
                "and aliases set on a version change a use case.",
            },
        )
    keys = await run_in_threadpool(
        backends.read_models.linked_use_cases, RegistrySystem.MLFLOW.value, name
    )
    if len(keys) != 1:
        return problem_response(_link_problem(name, keys))
    try:
        event_data = kind.model_validate({"model_name": name, **data})
        occurred = _occurred(payload.get("timestamp"))
    except ValueError as error:
        return problem_response(
            problem("invalid-mlflow-payload", "Invalid MLflow payload", 400, str(error))
        )
    posted = PostedEvent(
        source=MLFLOW_SOURCE,
        id=request.headers[DELIVERY_HEADER],
        type=f"mlflow.{entity}.{action}",
        subject=keys[0],
        time=occurred,
        data=event_data,
        fingerprint=delivery_fingerprint(payload),
    )
    ingestion: Ingestion = backends.ingestion
    actor = Actor(id=f"mlflow:{name}", role=Role.INTEGRATION)
    [outcome] = await run_in_threadpool(
        ingestion.ingest, [posted], actor, request.state.correlation_id
    )
    return _answer(outcome)


def _read_envelope(payload: Any) -> tuple[str, str, str, dict[str, Any]] | dict[str, Any]:
    """(entity, action, model name, data), or the problem naming what is wrong."""
    errors = []
    if not isinstance(payload, dict):
        errors.append(("", "an MLflow webhook payload is a JSON object"))
        payload = {}
    for field in ("entity", "action"):
        if not isinstance(payload.get(field), str):
            errors.append((field, "is required, as text"))
    data = payload.get("data")
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        errors.append(("data.name", "is required: the registered model's name"))
    if errors:
        return problem(
            "invalid-mlflow-payload",
            "Invalid MLflow payload",
            400,
            "Not an MLflow model-registry webhook: "
            + "; ".join(f"{path or '(payload)'} {message}" for path, message in errors),
            errors=[{"path": path, "message": message} for path, message in errors],
        )
    assert isinstance(data, dict)
    assert isinstance(name, str)
    fields = {k: v for k, v in data.items() if k in ("version", "alias")}
    return str(payload["entity"]), str(payload["action"]), name, fields


def _check_signature(
    request: Request, body: bytes, secret: str | None, name: str
) -> dict[str, Any] | None:
    if secret is None:
        return problem(
            "unknown-webhook-secret",
            "Unknown webhook secret",
            401,
            f"No webhook secret is kept for the MLflow model '{name}': make one with "
            f"'stagegate registry secret mlflow {name} --by YOU' and enter it as the secret "
            "of the MLflow webhook.",
        )
    timestamp = request.headers[TIMESTAMP_HEADER]
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        return _unauthorised(f"{TIMESTAMP_HEADER} must be Unix seconds, not '{timestamp}'.")
    if abs(datetime.now(UTC) - sent) > TIMESTAMP_TOLERANCE:
        return _unauthorised(
            f"The delivery was signed at {sent.isoformat()}, more than five minutes from now: "
            "a stale or replayed delivery is refused (check the clocks if it is neither)."
        )
    delivery_id = request.headers[DELIVERY_HEADER]
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    for candidate in request.headers[SIGNATURE_HEADER].split():
        version, _, value = candidate.partition(",")
        try:
            given = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            continue
        if version == "v1" and hmac.compare_digest(given, expected):
            return None
    return _unauthorised(
        f"{SIGNATURE_HEADER} does not match the body signed with the secret kept for "
        f"'{name}': the body was altered, or the webhook has another secret."
    )


def _unauthorised(detail: str) -> dict[str, Any]:
    return problem("invalid-signature", "Invalid signature", 401, detail)


def _link_problem(name: str, keys: list[str], what: str = "MLflow model") -> dict[str, Any]:
    system = "SAGEMAKER" if what.startswith("SageMaker") else "MLFLOW"
    if not keys:
        return problem(
            "model-not-linked",
            "Model not linked",
            404,
            f"The {what} '{name}' is linked to no use case: link it with "
            f"linkExternalModel (system {system}) for its events to be applied.",
        )
    return problem(
        "model-linked-ambiguously",
        "Model linked to several use cases",
        409,
        f"The {what} '{name}' is linked to {', '.join(keys)}; an event must name one. "
        "Unlink it from all but one.",
    )


def _occurred(timestamp: Any) -> datetime | None:
    if timestamp is None:
        return None
    occurred = datetime.fromisoformat(str(timestamp))
    if occurred.tzinfo is None:
        raise ValueError("timestamp needs a time zone")
    return occurred


def _answer(outcome: Outcome) -> Response:
    if outcome.status >= 400:
        return problem_response(outcome.body)
    return JSONResponse(status_code=outcome.status, content=outcome.body)


# --- SageMaker Model Registry, through an EventBridge API destination ------------------------

SAGEMAKER_SOURCE = "aws.sagemaker"
SAGEMAKER_DETAIL_TYPE = "SageMaker Model Package State Change"


class SagemakerPackageCompleted(EventData):
    group: str
    version: int
    arn: str

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RegisterCandidateVersion,
            set(),
            key=key,
            version={"label": version_label(self.group, str(self.version)), "model": self.arn},
        )


@router.post(
    "/v1/registries/sagemaker",
    summary="SageMaker Model Registry state changes, from an EventBridge API destination",
    description=(
        "An EventBridge rule on `SageMaker Model Package State Change` whose target is an API "
        "destination posting here, with an integration token bound to the source "
        "`aws.sagemaker` (`Authorization: Bearer`). A completed model package version of a "
        "linked model package group becomes a candidate version `GROUP/vN` (no prompt) the "
        "first time one is seen; SageMaker may send several events per change, so a delivery "
        "is deduplicated on what changed (package ARN, approval and package status, last "
        "modified time), not on the event's id. `Approved` names no approver, so it never "
        "records a sign-off: approval and rejection are acknowledged (202) and change "
        "nothing; the named approver signs off in stagegate."
    ),
    responses={
        200: {"description": "Applied (or applied the first time it was delivered)."},
        202: {"description": "Acknowledged: nothing for stagegate to record."},
        400: {"description": "Not a SageMaker model package state change."},
        401: {"description": "No valid bearer token."},
        403: {"description": "The token may not post as aws.sagemaker."},
        404: {"description": "The model package group is linked to no use case."},
        422: {"description": "Refused by a gate or a rule."},
    },
)
async def sagemaker_event(request: Request, principal: CurrentPrincipal) -> Response:
    body = await request.body()
    try:
        payload = await run_in_threadpool(loads_json, body)
    except Refused as refused:
        return problem_response(refused.document)
    if principal.actor.role is not Role.INTEGRATION or SAGEMAKER_SOURCE not in principal.sources:
        return problem_response(
            problem(
                "source-not-allowed",
                "Source not allowed",
                403,
                "SageMaker events are posted with an integration token bound to the source "
                "'aws.sagemaker' ('stagegate token create --role integration --source "
                "aws.sagemaker').",
            )
        )
    read = _read_package_change(payload)
    if isinstance(read, dict):
        return problem_response(read)
    group, version, arn, approval, status, modified = read
    if status != "Completed":
        return _acknowledged(f"the model package is {status}, not yet a version to judge")
    backends = request.app.state.backends
    keys = await run_in_threadpool(
        backends.read_models.linked_use_cases, RegistrySystem.SAGEMAKER.value, group
    )
    if len(keys) != 1:
        return problem_response(_link_problem(group, keys, "SageMaker model package group"))
    # SageMaker may send several events for one change, each with its own id: the change is
    # the delivery (what it is about and the state it reached), answered as the first time.
    change = f"{arn}|{approval}|{status}|{modified}"
    ingestion: Ingestion = backends.ingestion
    label = version_label(group, str(version))
    use_case = await run_in_threadpool(backends.stagegate.use_case, keys[0], to_read=True)
    # A version registered already is acknowledged, unless this very change registered it
    # (a copy of it): that one is answered as the first time, by the ingestion below.
    if label in use_case.state.versions and not await run_in_threadpool(
        ingestion.deliveries.find, [(SAGEMAKER_SOURCE, change)]
    ):
        return _acknowledged(
            f"{label} is registered already; SageMaker's {approval} names no approver, so it "
            "records no sign-off (the named approver signs off in stagegate)"
        )
    occurred = payload.get("time")
    posted = PostedEvent(
        source=SAGEMAKER_SOURCE,
        id=change,
        type="sagemaker.model_package.completed",
        subject=keys[0],
        time=datetime.fromisoformat(occurred) if isinstance(occurred, str) else None,
        data=SagemakerPackageCompleted(group=group, version=version, arn=arn),
        fingerprint=delivery_fingerprint({"change": change}),
    )
    [outcome] = await run_in_threadpool(
        ingestion.ingest, [posted], principal.actor, request.state.correlation_id
    )
    return _answer(outcome)


def _read_package_change(
    payload: Any,
) -> tuple[str, int, str, str, str, str] | dict[str, Any]:
    """(group, version, ARN, approval status, package status, last modified), or a problem."""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    errors = []
    if not isinstance(payload, dict) or payload.get("detail-type") != SAGEMAKER_DETAIL_TYPE:
        errors.append(("detail-type", f"must be '{SAGEMAKER_DETAIL_TYPE}'"))
    if not isinstance(detail, dict):
        errors.append(("detail", "is required: the model package's state"))
        detail = {}
    fields = {
        "ModelPackageGroupName": str,
        "ModelPackageVersion": int,
        "ModelPackageArn": str,
        "ModelApprovalStatus": str,
        "ModelPackageStatus": str,
    }
    for name, kind in fields.items():
        value = detail.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
            errors.append((f"detail.{name}", f"is required, as {kind.__name__}"))
    if errors:
        return problem(
            "invalid-sagemaker-event",
            "Invalid SageMaker event",
            400,
            "Not a SageMaker model package state change: "
            + "; ".join(f"{path} {message}" for path, message in errors),
            errors=[{"path": path, "message": message} for path, message in errors],
        )
    return (
        str(detail["ModelPackageGroupName"]),
        int(detail["ModelPackageVersion"]),
        str(detail["ModelPackageArn"]),
        str(detail["ModelApprovalStatus"]),
        str(detail["ModelPackageStatus"]),
        str(detail.get("LastModifiedTime", detail.get("CreationTime", ""))),
    )


def _acknowledged(reason: str) -> Response:
    return JSONResponse(status_code=202, content={"status": "ignored", "reason": reason})
