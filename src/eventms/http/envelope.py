"""The success envelope: `{"statusCode", "message", "result"[, "meta"]}`.

Bodies are assembled from bytes: the result is serialized once by pydantic-core,
and a cached body (see cache.py) can be served as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import orjson
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from eventms.db.queries import Page

T = TypeVar("T")


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int

    @classmethod
    def of(cls, page: Page, total: int) -> PageMeta:
        return cls(page=page.page, limit=page.limit, total=total)


class Envelope(BaseModel, Generic[T]):
    statusCode: int
    message: str
    result: T


class PageEnvelope(BaseModel, Generic[T]):
    statusCode: int
    message: str
    result: list[T]
    meta: PageMeta


def envelope_bytes(
    status: int, message: str, result_json: bytes, meta: PageMeta | None = None
) -> bytes:
    head = b'{"statusCode":%d,"message":%s,"result":' % (status, orjson.dumps(message))
    tail = b',"meta":' + meta.model_dump_json().encode() + b"}" if meta is not None else b"}"
    return head + result_json + tail


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def one_body(status: int, message: str, model: BaseModel) -> bytes:
    return envelope_bytes(status, message, model.model_dump_json(by_alias=True).encode())


def one(status: int, message: str, model: BaseModel) -> Response:
    return json_response(one_body(status, message, model), status)


_adapters: dict[type, TypeAdapter] = {}  # type: ignore[type-arg]


def page_body(
    message: str, models: Sequence[BaseModel], item: type[BaseModel], page: Page, total: int
) -> bytes:
    """A page of a list: `result` (the models as `item`s) and `meta`."""
    adapter = _adapters.get(item)
    if adapter is None:
        adapter = _adapters[item] = TypeAdapter(list[item])  # type: ignore[valid-type]
    result = adapter.dump_json(list(models), by_alias=True)
    return envelope_bytes(200, message, result, PageMeta.of(page, total))


def page_of(message: str, result_json: bytes, page: Page, total: int) -> bytes:
    """A page of a list whose `result` array is already JSON (db/json.py)."""
    return envelope_bytes(200, message, result_json, PageMeta.of(page, total))
