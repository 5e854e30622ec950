"""Domain errors: what services raise when a rule says no.

They know nothing of HTTP; `eventms.http.errors` maps each to its status and the
error envelope. A new rule raises one of these (or a subclass), never a response.
"""

from __future__ import annotations

import uuid


class DomainError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    status_code = 400


class InvalidInput(BadRequest):
    """A rule about the input that a schema cannot express (e.g. `from` after `to`):
    answered like any other validation error, naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("Validation Error")
        self.field = field
        self.detail = message


class NotFound(DomainError):
    status_code = 404

    @classmethod
    def by_id(cls, resource: str, entity_id: uuid.UUID | str) -> NotFound:
        """`Event with ID … not found`: the contract's sentence for every resource."""
        return cls(f"{resource} with ID {entity_id} not found")


class Conflict(DomainError):
    status_code = 409


class Unauthenticated(DomainError):
    """No valid credentials for a route that needs them."""

    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(DomainError):
    """Valid credentials that do not allow this."""

    status_code = 403


class TooManyRequests(DomainError):
    """A rate limit's budget is spent; `Retry-After` says for how long."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}
