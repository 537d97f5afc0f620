"""Users and groups for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.auth import AdminCaller

router = APIRouter(tags=["users"])


class UserOut(BaseModel):
    name: str
    roles: list[str]
    groups: list[str]
    disabled: bool


class NewUser(BaseModel):
    name: str
    password: str = Field(description="a first password; the user must change it at first sign-in")
    roles: list[str] = Field(default_factory=lambda: ["employee"])
    groups: list[str] = Field(default_factory=list)


class GroupsIn(BaseModel):
    groups: list[str]


class DisabledIn(BaseModel):
    disabled: bool


@router.get("/users", response_model=list[UserOut])
def list_users(request: Request, caller: AdminCaller) -> list[UserOut]:
    return [
        UserOut(name=u.name, roles=sorted(u.roles), groups=list(u.groups), disabled=off)
        for u, off in request.app.state.get_service().list_users(caller.user)
    ]


@router.post("/users", status_code=201, response_model=UserOut)
def add_user(body: NewUser, request: Request, caller: AdminCaller) -> UserOut:
    u = request.app.state.get_service().add_user(caller.user, body.name, body.password, body.roles, body.groups)
    return UserOut(name=u.name, roles=sorted(u.roles), groups=list(u.groups), disabled=False)


@router.put("/users/{name}/groups", response_model=UserOut)
def set_groups(name: str, body: GroupsIn, request: Request, caller: AdminCaller) -> UserOut:
    service = request.app.state.get_service()
    u = service.set_user_groups(caller.user, name, body.groups)
    return UserOut(
        name=u.name, roles=sorted(u.roles), groups=list(u.groups), disabled=service.accounts.is_disabled(name)
    )


@router.put("/users/{name}/disabled")
def set_disabled(name: str, body: DisabledIn, request: Request, caller: AdminCaller) -> dict:
    request.app.state.get_service().set_user_disabled(caller.user, name, body.disabled)
    return {"name": name, "disabled": body.disabled}


@router.get("/groups", response_model=list[str])
def list_groups(request: Request, caller: AdminCaller) -> list[str]:
    """Every group a user belongs to or a document is readable by."""
    service = request.app.state.get_service()
    users = {g for u, _ in service.list_users(caller.user) for g in u.read_groups}
    files = {g for f in service.manifest.all_files() for g in f.groups}
    return sorted(users | files)
