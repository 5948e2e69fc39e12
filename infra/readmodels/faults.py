"""Events a projection could not apply: set aside, named, and reported, never a stopped server.

A read model is derived; the log is the record. When one event (or one use case's summary)
cannot be written, for a value the store cannot hold or a bug, the projection records a fault
naming the projection, the event and the reason, and goes on with the rest of the log. The
fault shows in ``/readyz``, ``stagegate projections status`` and the log; ``stagegate
projections rebuild`` (after the cause is fixed) applies everything again and clears them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from infra.database import Cursor, Database
from infra.readmodels.schema import FAULTS
from projections.readmodels import ProjectionFault

log = logging.getLogger(__name__)

MAX_REASON = 1000
"""Characters of an error message kept in a fault row."""


def record(
    curs: Cursor,
    db: Database,
    projection: str,
    aggregate_id: str,
    version: int,
    notification_id: int | None,
    error: BaseException,
) -> None:
    """Record (and log) that ``projection`` could not apply an event, in ``curs``'s transaction."""
    reason = f"{type(error).__name__}: {error}"[:MAX_REASON]
    log.error(
        "projection %s could not apply version %s of %s (notification %s): %s; its read model "
        "lacks it until 'stagegate projections rebuild' after the cause is fixed",
        projection,
        version,
        aggregate_id,
        notification_id,
        reason,
    )
    curs.execute(
        f"INSERT INTO {db.table(FAULTS)} AS f (projection, aggregate_id, version,"
        " notification_id, reason, recorded_at) VALUES (%s, %s, %s, %s, %s, %s)"
        # A second fault of the same event (its cost row, then its summary) keeps both.
        " ON CONFLICT (projection, aggregate_id, version)"
        " DO UPDATE SET reason = f.reason || '; ' || excluded.reason",
        (projection, aggregate_id, version, notification_id, reason, db.ts(datetime.now(UTC))),
    )


def recorded(db: Database, limit: int = 20) -> tuple[int, list[ProjectionFault]]:
    """How many faults are recorded, and the first ``limit`` of them in log order."""
    [counted] = db.select(f"SELECT COUNT(*) AS n FROM {db.table(FAULTS)}")
    rows = db.select(
        f"SELECT * FROM {db.table(FAULTS)}"
        # In log order, those without a log position (found in a rebuild) last, on both
        # stores (they sort NULLs at opposite ends).
        " ORDER BY notification_id IS NULL, notification_id, projection, aggregate_id, version"
        " LIMIT %s",
        (limit,),
    )
    return int(counted["n"]), [
        ProjectionFault(
            projection=str(row["projection"]),
            aggregate_id=str(row["aggregate_id"]),
            version=int(row["version"]),
            notification_id=(
                int(row["notification_id"]) if row["notification_id"] is not None else None
            ),
            reason=str(row["reason"]),
            recorded_at=db.read_required_ts(row["recorded_at"]),
        )
        for row in rows
    ]
