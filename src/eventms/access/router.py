"""`/keys` routes (scope `admin`): create, list, revoke API keys."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.access import service
from eventms.access.deps import requires
from eventms.access.schemas import KeyCreate, KeyCreated, KeyOut
from eventms.access.scopes import Scope
from eventms.api.deps import SessionDep, StateDep
from eventms.db.effects import after_commit
from eventms.http.envelope import Envelope, json_response, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id

ADMIN = [requires(Scope.ADMIN)]
router = APIRouter(prefix="/keys", tags=["API keys"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[KeyCreated],
    summary="Create an API key (its token is shown this once)",
    dependencies=ADMIN,
)
async def create_key(body: KeyCreate, session: SessionDep) -> Response:
    key, token = await service.create_key(session, name=body.name, scopes=body.scopes)
    created = KeyCreated.model_validate({**KeyOut.model_validate(key).model_dump(), "token": token})
    return one(201, "API key created", created)


@router.get(
    "", response_model=Envelope[list[KeyOut]], summary="List active API keys", dependencies=ADMIN
)
async def list_keys(session: SessionDep) -> Response:
    keys = [KeyOut.model_validate(k) for k in await service.list_keys(session)]
    body = b'{"statusCode":200,"message":"List of API keys","result":%s}' % (
        b"[" + b",".join(k.model_dump_json(by_alias=True).encode() for k in keys) + b"]"
    )
    return json_response(body)


@router.delete(
    "/{key_id}",
    response_model=Envelope[KeyOut],
    summary="Revoke an API key (refused everywhere within 5 s)",
    dependencies=ADMIN,
)
async def revoke_key(key_id: str, session: SessionDep, state: StateDep) -> Response:
    key = await service.revoke_key(session, key_id=parse_id(key_id, "API key"))

    async def forget() -> None:  # this instance refuses it at once
        state["keys"].forget()

    after_commit(session, forget)
    return one(200, "API key revoked", KeyOut.model_validate(key))
