"""The use-case aggregate: its events (``events``) and its commands (``aggregate``)."""

from domain.usecase.aggregate import UseCase, UseCaseSnapshot, use_case_id

__all__ = ["UseCase", "UseCaseSnapshot", "use_case_id"]
