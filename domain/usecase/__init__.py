"""The use-case aggregate: its events (``events``) and its commands (``aggregate``)."""

from domain.usecase.aggregate import UseCase, use_case_id

__all__ = ["UseCase", "use_case_id"]
