"""A use case's audit history in GraphQL: entries, edges and the page info they share."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError

from api.graphql.derive import graphql_enum
from api.graphql.node import AUDIT_ENTRY, Node, global_id
from domain.values import Channel as DomainChannel
from projections.history import HistoryEntry
from projections.readmodels import Page

if TYPE_CHECKING:
    Channel = DomainChannel
else:
    Channel = graphql_enum(DomainChannel)


MAX_PAGE = 100


def check_page_size(size: int) -> None:
    if not 1 <= size <= MAX_PAGE:
        raise GraphQLError(f"first/last must be between 1 and {MAX_PAGE}, not {size}")


@strawberry.type(
    description="Relay page info: `startCursor`/`endCursor` are the first and last "
    "edges' cursors; page back with `last` and `before: startCursor`."
)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


@strawberry.type(description="One event of a use case's history, as an auditor reads it.")
class AuditEntry(Node):
    use_case_id: strawberry.Private[str]
    version: int
    type: str = strawberry.field(description="The event, e.g. StageAdvanced.")
    recorded_at: datetime = strawberry.field(description="The server's clock.")
    business_time: datetime | None = strawberry.field(
        description="When the reported fact happened (measured, deployed), if it has one."
    )
    actor_id: str
    actor_role: str
    channel: Channel
    reason: str | None
    correlation_id: str
    source: str | None = strawberry.field(description="CloudEvents source, if any.")
    delivery_id: str | None = strawberry.field(description="CloudEvents id, if any.")
    corrects: int | None = strawberry.field(description="Version this event corrects.")
    payload: str = strawberry.field(description="The event as stored (canonical JSON).")

    @strawberry.field(description="Global id (Relay): `node(id)` finds this entry again.")
    def id(self) -> strawberry.ID:
        return global_id(AUDIT_ENTRY, self.use_case_id, self.version)

    @classmethod
    def from_entry(cls, entry: HistoryEntry) -> AuditEntry:
        return cls(
            use_case_id=entry.aggregate_id,
            version=entry.version,
            type=entry.event_type,
            recorded_at=entry.recorded_at,
            business_time=entry.business_time,
            actor_id=entry.actor_id,
            actor_role=entry.actor_role,
            channel=DomainChannel(entry.channel),
            reason=entry.reason,
            correlation_id=entry.correlation_id,
            source=entry.source,
            delivery_id=entry.delivery_id,
            corrects=entry.corrects,
            payload=entry.payload,
        )


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEntry


@strawberry.type(description="Audit entries, oldest first.")
class HistoryConnection:
    edges: list[AuditEdge]
    page_info: PageInfo


def history_connection(page: Page[HistoryEntry]) -> HistoryConnection:
    edges = [
        AuditEdge(cursor=c, node=AuditEntry.from_entry(e))
        for e, c in zip(page.items, page.cursors, strict=True)
    ]
    return HistoryConnection(edges=edges, page_info=PageInfo.of(page))
