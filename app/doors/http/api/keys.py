"""The caller's own API keys: create, list and revoke.

A key creates keys no stronger than itself: a `read` key creates only `read` keys, an `admin`
or `audit` key its own scope or `read`; only an `admin` key (or the local operator) names
another account as `owner`; a key that expires creates only keys that expire no later. The
new key is in the response once and nowhere else (only its hash is stored; the audit entry
names its id).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.doors.http.api.auth import ReadCaller
from app.identity.keys import READ, ApiKeyRecord

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


class NewKey(BaseModel):
    name: str = Field("", max_length=100, description="a label to recognise the key by")
    scope: str = Field(READ, description="read, admin or audit; at most the calling key's scope")
    expires_days: float | None = Field(None, gt=0, description="days until the key stops working")
    owner: str | None = Field(None, description="the account the key acts for (admin keys only; default: yours)")


class CreatedKey(KeyOut):
    key: str = Field(description="the key itself, shown only in this response: store it now")


@router.post("/keys", status_code=201, response_model=CreatedKey)
def create_key(body: NewKey, request: Request, caller: ReadCaller) -> CreatedKey:
    """Create a key (for yourself; an admin key may name another account as `owner`). The key
    is returned once, in `key`; the owner's roles still decide what it may do."""
    service = request.app.state.get_service()
    within = None if caller.operator else service.api_keys.get(caller.key_id)
    record, key = service.create_api_key(
        caller.user, body.scope, body.name, body.expires_days, owner=body.owner, within=within
    )
    return CreatedKey(**key_out(record).model_dump(), key=key)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(request: Request, caller: ReadCaller) -> list[KeyOut]:
    return [key_out(r) for r in request.app.state.get_service().list_api_keys(caller.user)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, request: Request, caller: ReadCaller) -> KeyOut:
    return key_out(request.app.state.get_service().revoke_api_key(caller.user, key_id))
