"""The caller's own API keys: list and revoke (create with `kura keys create` or in the UI:
a key never creates keys)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api.auth import ReadCaller
from app.keys import ApiKeyRecord

router = APIRouter(tags=["keys"])


class KeyOut(BaseModel):
    id: str
    owner: str
    name: str
    scope: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None


def key_out(r: ApiKeyRecord) -> KeyOut:
    return KeyOut(
        id=r.id,
        owner=r.owner,
        name=r.name,
        scope=r.scope,
        created=r.created,
        expires=r.expires,
        revoked=r.revoked,
        last_used=r.last_used,
    )


@router.get("/keys", response_model=list[KeyOut])
def list_keys(request: Request, caller: ReadCaller) -> list[KeyOut]:
    return [key_out(r) for r in request.app.state.get_service().list_api_keys(caller.user)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, request: Request, caller: ReadCaller) -> KeyOut:
    return key_out(request.app.state.get_service().revoke_api_key(caller.user, key_id))
