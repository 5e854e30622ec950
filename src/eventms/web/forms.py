"""HTML form posts: read an `application/x-www-form-urlencoded` body, and turn the
API's own schemas' validation errors into words beside each field.

The pages validate with the same Pydantic models as the API (one set of rules);
what differs is only how a refusal is shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.db.effects import discard_after_commit
from eventms.errors import DomainError, InvalidInput

MAX_FORM_BYTES = 256 * 1024  # an event's description is the largest field


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the last value of a repeated one). `request.body()` keeps
    the body, so that a dependency (the console's CSRF check) and the route both
    read it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormTooLarge
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def field_errors(error: ValidationError) -> dict[str, str]:
    """`{field: message}` for each field a schema refused (by its Python name)."""
    found: dict[str, str] = {}
    for problem in error.errors():
        where = problem.get("loc") or ("form",)
        field = str(where[0])
        message = str(problem.get("msg", "is not valid"))
        found.setdefault(field, message.removeprefix("Value error, "))
    return found


def domain_error_words(error: DomainError) -> tuple[str | None, str]:
    """(the field it is about, or None; the sentence to show) for a service's refusal."""
    if isinstance(error, InvalidInput):
        return error.field, error.detail
    return None, error.message


def parse(
    model: type[BaseModel], fields: dict[str, Any], *, drop_blank: bool = True
) -> tuple[Any, dict[str, str]]:
    """The model made from the form's fields (blank ones left out unless told), or
    None and the errors by field."""
    given = {k: v for k, v in fields.items() if v != "" or not drop_blank}
    try:
        return model.model_validate(given), {}
    except ValidationError as error:
        return None, field_errors(error)


async def undo_refused_write(session: AsyncSession) -> None:
    """A service refused the write: roll back what it did, and forget the effects it
    registered (the page answers in words, so the request's session dependency will
    commit nothing and must announce nothing)."""
    await session.rollback()
    discard_after_commit(session)
