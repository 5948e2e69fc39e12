"""The use-case lifecycle: aggregates, gates, commands and the application boundary.

Depends on eventsourcing and pydantic only; never on the transports or the environment.
"""
