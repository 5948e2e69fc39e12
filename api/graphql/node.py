"""Relay's object identification: global ids, and ``node(id)`` to find an object again.

A global id is Relay's usual opaque form, base64 of ``Type:id``: ``UseCase:<uuid>`` and
``AuditEntry:<use case uuid>:<version>``. A portal keeps it (in a URL, a cache) and asks
``node(id)`` later; the same roles apply as everywhere (a viewer's ``node`` of an audit entry
is null, with a FORBIDDEN error).
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.relay import GlobalID, GlobalIDValueError

USE_CASE = "UseCase"
AUDIT_ENTRY = "AuditEntry"


@strawberry.interface(description="An object with a global id (Relay): `node(id)` finds it again.")
class Node:
    @strawberry.field(description="Global id (Relay): `node(id)` finds this object again.")
    def id(self) -> strawberry.ID:
        raise NotImplementedError  # each type implementing Node says how


def global_id(type_name: str, *parts: object) -> strawberry.ID:
    return strawberry.ID(str(GlobalID(type_name, ":".join(str(p) for p in parts))))


def parse_global_id(value: str) -> tuple[str, list[str]]:
    """The type name and the parts of a global id; a GraphQL error naming the problem if it
    is not one of stagegate's."""
    try:
        decoded = GlobalID.from_id(value)
    except GlobalIDValueError:
        raise GraphQLError(
            f"{value!r} is not a global id: take it from an object's `id` field"
        ) from None
    if decoded.type_name not in (USE_CASE, AUDIT_ENTRY):
        raise GraphQLError(f"{value!r} is not the id of a UseCase or an AuditEntry")
    return decoded.type_name, decoded.node_id.split(":")
