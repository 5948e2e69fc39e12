#!/usr/bin/env python3
"""Verify a stagegate audit export offline, with the Python standard library only.

    python3 verify_export.py EXPORT.jsonl [--published PUBLISHED.jsonl]

Prints one line per use case in the export: intact, or the first bad version and why; exits
with status 1 if any is not intact, 2 if a file cannot be read. ``--published`` is a file of
head lines published earlier (or an earlier export): without it, an export whose chain an
attacker recomputed looks intact. The procedure is described in docs/audit.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from typing import Any

GENESIS = "0" * 64
NAMESPACE = uuid.UUID("7d3b1a52-5f0e-4d0c-9a57-3f1f4a6c2b10")
# Top-level copies of what the hashed payload says; each must agree with it.
COPIES = {
    "recordedAt": ("timestamp",),
    "actorId": ("meta", "actor_id"),
    "actorRole": ("meta", "actor_role"),
    "channel": ("meta", "channel"),
    "reason": ("meta", "reason"),
    "correlationId": ("meta", "correlation_id"),
}


def event_hash(previous: str, originator_id: str, version: int, topic: str, state: bytes) -> str:
    header = f"{previous}\n{originator_id}\n{version}\n{topic}\n".encode()
    return hashlib.sha256(header + state).hexdigest()


def stored_state(line: dict[str, Any]) -> bytes:
    """The bytes the database stored: the canonical JSON of the payload, unless given raw."""
    if "stateBase64" in line:
        return base64.b64decode(line["stateBase64"], validate=True)
    return json.dumps(
        line["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def copies_disagree(line: dict[str, Any], state: bytes) -> str | None:
    try:
        payload = json.loads(state)
    except ValueError:
        payload = None
    for field, path in COPIES.items():
        value: Any = payload
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if line.get(field) != value:
            return field
    if line.get("type") != line["topic"].rpartition(":")[2].rpartition(".")[2]:
        return "type"
    return None


def verify(key: str, lines: list[dict[str, Any]], published: dict[int, str]) -> str:
    """One report line for one use case's part of the export."""
    events = [line for line in lines if "headVersion" not in line]
    heads = [line for line in lines if "headVersion" in line]
    chain: dict[int, str] = {}
    previous = GENESIS
    expected_id = str(uuid.uuid5(NAMESPACE, f"use-case:{key}"))
    for expected, line in enumerate(events, start=1):
        version = line.get("version")
        if version != expected:
            return bad(key, expected, f"version {expected} is missing")
        if line.get("originatorId") != expected_id:
            return bad(key, version, f"originatorId of version {version} is not the id of {key}")
        try:
            state = stored_state(line)
            digest = event_hash(previous, expected_id, version, str(line["topic"]), state)
        except (KeyError, TypeError, ValueError):
            return bad(key, version, f"version {version} has no topic or payload to hash")
        if line.get("prevHash") != previous or line.get("hash") != digest:
            return bad(
                key, version, f"payload or hash of version {version} does not match its chain"
            )
        field = copies_disagree(line, state)
        if field is not None:
            return bad(key, version, f"{field} of version {version} does not match its payload")
        chain[version] = previous = digest
    last = len(events)
    if len(heads) != 1 or heads[0].get("headVersion") != last:
        return bad(key, None, "the export does not end with one head line naming its last version")
    if heads[0].get("headHash") != previous:
        return bad(key, None, "the head line's hash is not the hash of the last version")
    agreed = 0
    for version in sorted(published):
        if version > last:
            return bad(
                key,
                last + 1,
                f"history ends at version {last} but the published head is at version {version}",
            )
        if chain[version] != published[version]:
            if version == agreed + 1:
                return bad(
                    key, version, f"chain differs from the published chain at version {version}"
                )
            return bad(
                key,
                None,
                f"chain does not match the published hash of version {version}: "
                f"a version from {agreed + 1} to {version} was altered",
            )
        agreed = version
    return f"{key}: intact at version {last} ({previous})"


def bad(key: str, version: int | None, reason: str) -> str:
    if version is None:
        return f"{key}: NOT INTACT: {reason}"
    return f"{key}: NOT INTACT, first bad version {version}: {reason}"


def read_lines(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        records = [json.loads(text) for text in file if text.strip()]
    if not all(isinstance(r, dict) and isinstance(r.get("key"), str) for r in records):
        raise ValueError("every line must be a JSON object with a 'key'")
    return records


def published_hashes(records: list[dict[str, Any]]) -> dict[str, dict[int, str]]:
    """Version -> hash by key, from head lines and (in an earlier export) event lines."""
    hashes: dict[str, dict[int, str]] = {}
    for record in records:
        is_head = "headVersion" in record
        version = record.get("headVersion" if is_head else "version")
        digest = record.get("headHash" if is_head else "hash")
        if not isinstance(version, int) or not isinstance(digest, str):
            raise ValueError(f"a line of {record['key']} has no version and hash")
        hashes.setdefault(record["key"], {})[version] = digest
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a file written by 'stagegate audit export'")
    parser.add_argument("--published", help="head lines published earlier, or an earlier export")
    args = parser.parse_args()
    try:
        records = read_lines(args.export)
        published = published_hashes(read_lines(args.published)) if args.published else {}
    except (OSError, ValueError) as error:
        print(f"cannot read the export: {error}", file=sys.stderr)
        return 2
    by_key: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_key.setdefault(record["key"], []).append(record)
    results = [verify(key, lines, published.get(key, {})) for key, lines in by_key.items()]
    for missing in sorted(set(published) - set(by_key)):
        results.append(bad(missing, 1, "the export holds none of its published history"))
    print("\n".join(results))
    return 1 if any("NOT INTACT" in result for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
