"""Webhook subscriptions in GraphQL: create, remove, list, and each one's delivery log (admins)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import strawberry
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from api.graphql.context import Context
from api.graphql.derive import graphql_enum
from api.graphql.errors import FieldError, Forbidden, NotFound, ValidationFailed
from domain.errors import ValidationFailed as DomainValidationFailed
from domain.notifications import Notification as DomainNotification
from domain.values import Role

if TYPE_CHECKING:
    Notification = DomainNotification
else:
    Notification = graphql_enum(DomainNotification)


class WebhookAdmin(Protocol):
    """The subscriptions store and its delivery log."""

    def subscribe(
        self, url: str, event_types: tuple[str, ...], secret: str | None, created_by: str
    ) -> tuple[Any, str]: ...
    def unsubscribe(self, subscription_id: str) -> bool: ...
    def list_subscriptions(self) -> Sequence[Any]: ...
    def delivery_log(self, subscription_id: str, limit: int) -> Sequence[Any]: ...


class _SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    event_types: list[DomainNotification] = Field(default_factory=list, alias="eventTypes")
    # Whether it is a whsec_ secret is the subscriptions store's to judge (``subscribe``).
    secret: Annotated[str, Field(max_length=256)] | None = None


@strawberry.type(description="One attempt record of a webhook delivery.")
class WebhookDelivery:
    notification_id: int
    type: Notification
    status: str = strawberry.field(
        description="pending, delivered, or refused (the URL is not allowed: `lastError` says"
        " why; not retried)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


@strawberry.type(description="Where stagegate announces what happens, and what it announces.")
class WebhookSubscription:
    id: str
    url: str
    event_types: list[Notification] = strawberry.field(description="Empty: every type.")
    active: bool
    created_by: str
    created_at: datetime

    @strawberry.field(description="The newest deliveries first.")
    def deliveries(
        self, info: strawberry.Info[Context, None], first: int = 20
    ) -> list[WebhookDelivery]:
        admin: WebhookAdmin = info.context.webhooks
        rows = admin.delivery_log(self.id, max(1, min(first, 100)))
        return [
            WebhookDelivery(
                notification_id=r.outbox_id,
                type=DomainNotification(r.kind),
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_status_code=r.last_status_code,
                last_error=r.last_error,
                delivered_at=r.delivered_at,
            )
            for r in rows
        ]

    @classmethod
    def of(cls, subscription: Any) -> WebhookSubscription:
        return cls(
            id=subscription.id,
            url=subscription.url,
            event_types=[DomainNotification(t) for t in subscription.event_types],
            active=subscription.active,
            created_by=subscription.created_by,
            created_at=subscription.created_at,
        )


@strawberry.type(
    description="A new subscription; `secret` (`whsec_...`, Standard Webhooks) signs its"
    " requests and is shown once."
)
class CreatedWebhookSubscription:
    subscription: WebhookSubscription
    secret: str


@strawberry.input
class CreateWebhookSubscriptionInput:
    url: str
    event_types: list[Notification] | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="`whsec_` and the base64 of 24 to 64 random bytes (Standard Webhooks);"
        " generated when left out.",
    )


CreateWebhookResult = Annotated[
    CreatedWebhookSubscription | ValidationFailed | Forbidden,
    strawberry.union("CreateWebhookSubscriptionResult"),
]
RemoveWebhookResult = Annotated[
    WebhookSubscription | NotFound | Forbidden,
    strawberry.union("RemoveWebhookSubscriptionResult"),
]

_ADMINS_ONLY = "Webhook subscriptions are managed by admins."


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Every webhook subscription (admins).")
    def webhook_subscriptions(
        self, info: strawberry.Info[Context, None]
    ) -> list[WebhookSubscription]:
        context = info.context
        if context.actor.role is not Role.ADMIN:
            raise PermissionError(_ADMINS_ONLY)
        return [WebhookSubscription.of(s) for s in context.webhooks.list_subscriptions()]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Subscribe a URL to notifications (admins). It must be https and resolve"
        " to public addresses only, unless the server's settings allow more."
    )
    def create_webhook_subscription(
        self, info: strawberry.Info[Context, None], input: CreateWebhookSubscriptionInput
    ) -> CreateWebhookResult:
        context = info.context
        if context.actor.role is not Role.ADMIN:
            return Forbidden(message=_ADMINS_ONLY)
        try:
            request = _SubscriptionRequest.model_validate(
                {
                    "url": input.url,
                    "eventTypes": [DomainNotification(t) for t in input.event_types or ()],
                    "secret": input.secret,
                }
            )
        except PydanticValidationError as error:
            failed = DomainValidationFailed.from_pydantic(error)
            return ValidationFailed(
                message=failed.message,
                errors=[FieldError(path=e.path, message=e.message) for e in failed.errors],
            )
        try:
            subscription, secret = context.webhooks.subscribe(
                str(request.url),
                tuple(t.value for t in request.event_types),
                request.secret,
                context.actor.id,
            )
        except DomainValidationFailed as refused:  # the URL where it resolves, or the secret
            return ValidationFailed(
                message=refused.message,
                errors=[FieldError(path=e.path, message=e.message) for e in refused.errors],
            )
        return CreatedWebhookSubscription(
            subscription=WebhookSubscription.of(subscription), secret=secret
        )

    @strawberry.mutation(description="Stop delivering to a subscription (admins).")
    def remove_webhook_subscription(
        self, info: strawberry.Info[Context, None], id: str
    ) -> RemoveWebhookResult:
        context = info.context
        if context.actor.role is not Role.ADMIN:
            return Forbidden(message=_ADMINS_ONLY)
        admin: WebhookAdmin = context.webhooks
        if not admin.unsubscribe(id):
            return NotFound(message=f"no webhook subscription has the id '{id}'", key=id)
        [subscription] = [s for s in admin.list_subscriptions() if s.id == id]
        return WebhookSubscription.of(subscription)
