"""The `Idempotency-Key` header, and the answers it adds, on every write operation
of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from eventms.idempotency.middleware import HEADER, IN_FLIGHT, INVALID, REUSED, WRITES

PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: a repeat of a completed request (same method,"
    " path and body) within IDEMPOTENCY_TTL_HOURS gets the stored answer with"
    " `Idempotent-Replayed: true`, and has no second effect. Scoped to the caller"
    " (its API key, or its address).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


def document_idempotency(app: FastAPI, prefix: str) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for path, operations in document["paths"].items():
            if not path.startswith(prefix):
                continue
            for method, operation in operations.items():
                if method.upper() not in WRITES:
                    continue
                parameters = operation.setdefault("parameters", [])
                if any(p.get("name") == HEADER for p in parameters):
                    continue  # documented already (the document is built once)
                parameters.append(PARAMETER)
                responses = operation.setdefault("responses", {})
                bad = responses.setdefault("400", {"description": "Validation error"})
                bad["description"] += f"; or: {INVALID}"
                bad.setdefault("content", error)
                busy = responses.setdefault("409", {"description": "Conflict"})
                busy["description"] += f"; or: {IN_FLIGHT} (with Retry-After)"
                busy.setdefault("content", error)
                responses["422"] = {"description": REUSED, "content": error}
        return document

    app.openapi = openapi  # type: ignore[method-assign]
