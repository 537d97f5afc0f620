"""Users and groups for admins (an `admin` key or the local operator's token): each route calls
one People method (app/service/people.py), which checks the role and writes the audit entry.
`kura users ...` goes through these while a server runs (app/server_people.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.doors.http.api.auth import AdminCaller
from app.identity.accounts import AccountInfo
from app.identity.users import User

router = APIRouter(tags=["users"])


class UserOut(BaseModel):
    name: str
    roles: list[str]
    groups: list[str]
    disabled: bool
    source: str = Field("local", description="local, ldap or oidc")
    must_change_password: bool = False
    synced_groups: list[str] = Field(default_factory=list, description="from the directory (ldap, oidc)")
    extra_groups: list[str] = Field(default_factory=list, description="added by an admin on top of the directory's")
    last_synced: float | None = Field(None, description="epoch seconds the directory was last read for this account")


class NewUser(BaseModel):
    name: str
    password: str = Field(description="a first password")
    roles: list[str] = Field(default_factory=lambda: ["employee"])
    groups: list[str] = Field(default_factory=list)
    must_change_password: bool = Field(True, description="the user must change it at first sign-in")


class GroupsIn(BaseModel):
    groups: list[str]


class RolesIn(BaseModel):
    roles: list[str] = Field(description="employee, admin, auditor (at least one)")


class DisabledIn(BaseModel):
    disabled: bool


class PasswordIn(BaseModel):
    password: str
    must_change: bool = Field(True, description="the user must change it at the next sign-in")


class SyncResult(BaseModel):
    name: str
    outcome: str


def user_out(info: AccountInfo) -> UserOut:
    u = info.user
    return UserOut(
        name=u.name,
        roles=sorted(u.roles),
        groups=list(u.groups),
        disabled=info.disabled,
        source=info.source,
        must_change_password=info.must_change_password,
        synced_groups=list(info.synced_groups),
        extra_groups=list(info.extra_groups),
        last_synced=info.last_synced,
    )


def _changed(request: Request, caller: AdminCaller, user: User) -> UserOut:
    """The account as it is after a change (read with the same admin check)."""
    return user_out(request.app.state.get_service().user_info(caller.user, user.name))


@router.get("/users", response_model=list[UserOut])
def list_users(request: Request, caller: AdminCaller) -> list[UserOut]:
    return [user_out(i) for i in request.app.state.get_service().user_infos(caller.user)]


@router.post("/users", status_code=201, response_model=UserOut)
def add_user(body: NewUser, request: Request, caller: AdminCaller) -> UserOut:
    u = request.app.state.get_service().add_user(
        caller.user, body.name, body.password, body.roles, body.groups, must_change_password=body.must_change_password
    )
    return _changed(request, caller, u)


@router.post("/users/sync", response_model=list[SyncResult])
def sync_directory(request: Request, caller: AdminCaller) -> list[SyncResult]:
    """Read every LDAP account again from the directory now (what `kura users sync` does)."""
    return [SyncResult(name=n, outcome=o) for n, o in request.app.state.get_service().sync_directory(caller.user)]


@router.get("/users/{name}", response_model=UserOut)
def user_info(name: str, request: Request, caller: AdminCaller) -> UserOut:
    return user_out(request.app.state.get_service().user_info(caller.user, name))


@router.put("/users/{name}/roles", response_model=UserOut)
def set_roles(name: str, body: RolesIn, request: Request, caller: AdminCaller) -> UserOut:
    return _changed(request, caller, request.app.state.get_service().set_user_roles(caller.user, name, body.roles))


@router.put("/users/{name}/groups", response_model=UserOut)
def set_groups(name: str, body: GroupsIn, request: Request, caller: AdminCaller) -> UserOut:
    return _changed(request, caller, request.app.state.get_service().set_user_groups(caller.user, name, body.groups))


@router.post("/users/{name}/groups/{group}", response_model=UserOut)
def add_to_group(name: str, group: str, request: Request, caller: AdminCaller) -> UserOut:
    service = request.app.state.get_service()
    return _changed(request, caller, service.add_user_to_group(caller.user, name, group))


@router.delete("/users/{name}/groups/{group}", response_model=UserOut)
def remove_from_group(name: str, group: str, request: Request, caller: AdminCaller) -> UserOut:
    service = request.app.state.get_service()
    return _changed(request, caller, service.remove_user_from_group(caller.user, name, group))


@router.put("/users/{name}/extra-groups", response_model=UserOut)
def set_extra_groups(name: str, body: GroupsIn, request: Request, caller: AdminCaller) -> UserOut:
    """A directory account's local groups on top of the directory's ([] removes them all)."""
    service = request.app.state.get_service()
    return _changed(request, caller, service.set_user_extra_groups(caller.user, name, body.groups))


@router.put("/users/{name}/disabled")
def set_disabled(name: str, body: DisabledIn, request: Request, caller: AdminCaller) -> dict:
    request.app.state.get_service().set_user_disabled(caller.user, name, body.disabled)
    return {"name": name, "disabled": body.disabled}


@router.delete("/users/{name}")
def delete_user(name: str, request: Request, caller: AdminCaller) -> dict:
    """Delete an account with its sessions and, at once, its saved conversations."""
    conversations = request.app.state.get_service().delete_user(caller.user, name)
    return {"name": name, "deleted": True, "conversations_deleted": conversations}


@router.post("/users/{name}/unlock")
def unlock(name: str, request: Request, caller: AdminCaller) -> dict:
    """Forget the failed sign-ins that locked the account out."""
    request.app.state.get_service().unlock_user(caller.user, name)
    return {"name": name, "unlocked": True}


@router.put("/users/{name}/password")
def reset_password(name: str, body: PasswordIn, request: Request, caller: AdminCaller) -> dict:
    """Set a local account's password (its sessions end). The password is never logged."""
    request.app.state.get_service().reset_password(caller.user, name, body.password, must_change=body.must_change)
    return {"name": name, "must_change_password": body.must_change}


@router.get("/groups", response_model=list[str])
def list_groups(request: Request, caller: AdminCaller) -> list[str]:
    """Every group a user belongs to or a document is readable by."""
    service = request.app.state.get_service()
    users = {g for u, _ in service.list_users(caller.user) for g in u.read_groups}
    files = {g for f in service.manifest.all_files() for g in f.groups}
    return sorted(users | files)
