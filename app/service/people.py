"""Accounts and API keys: who may sign in, with which roles and groups, and which keys act for
them. Admin-only changes are refused (audited) for anyone else; the account store
(app/identity/accounts.py) audits every change it makes under the admin's name.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.identity.accounts import AccountInfo, UnknownUser
from app.identity.keys import ADMIN_SCOPE, AUDIT_SCOPE, ApiKeyNotFound, ApiKeyRecord, InvalidApiKey, check_scope
from app.identity.keys import READ as READ_SCOPE
from app.identity.users import ADMIN, AUDITOR, AccessDenied, User
from app.service.parts import UseCase


class People(UseCase):
    # --- accounts (admins; app/identity/accounts.py audits each change under the admin's name) ---------
    def list_users(self, user: User) -> list[tuple[User, bool]]:
        """Every account with its disabled flag, for admins."""
        self._denied(user, ADMIN, "list users")
        return [(u, self.accounts.is_disabled(u.name)) for u in self.accounts.list()]

    def user_infos(self, user: User) -> list[AccountInfo]:
        """Every account with its source, directory groups, extra groups and last sync."""
        self._denied(user, ADMIN, "list users")
        return self.accounts.list_info()

    def user_info(self, user: User, name: str) -> AccountInfo:
        self._denied(user, ADMIN, "list users", target=name)
        return self.accounts.info(name)

    def add_user(
        self,
        user: User,
        name: str,
        password: str,
        roles: Sequence[str],
        groups: Sequence[str],
        must_change_password: bool = True,
    ) -> User:
        self._denied(user, ADMIN, "add users", target=name)
        return self.accounts.add(name, password, roles, groups, must_change_password=must_change_password, by=user.name)

    def set_user_roles(self, user: User, name: str, roles: Sequence[str]) -> User:
        self._denied(user, ADMIN, "change a user's roles", target=name)
        self.accounts.set_roles(name, roles, by=user.name)
        return self.accounts.get(name)

    def set_user_groups(self, user: User, name: str, groups: Sequence[str]) -> User:
        self._denied(user, ADMIN, "change a user's groups", target=name)
        self.accounts.set_groups(name, groups, by=user.name)
        return self.accounts.get(name)

    def add_user_to_group(self, user: User, name: str, group: str) -> User:
        self._denied(user, ADMIN, "change a user's groups", target=name)
        self.accounts.add_to_group(name, group, by=user.name)
        return self.accounts.get(name)

    def remove_user_from_group(self, user: User, name: str, group: str) -> User:
        self._denied(user, ADMIN, "change a user's groups", target=name)
        self.accounts.remove_from_group(name, group, by=user.name)
        return self.accounts.get(name)

    def set_user_extra_groups(self, user: User, name: str, groups: Sequence[str]) -> User:
        """Local groups added to a directory account's (audited; the directory's stay as they are)."""
        self._denied(user, ADMIN, "change a user's groups", target=name)
        self.accounts.set_extra_groups(name, groups, by=user.name)
        return self.accounts.get(name)

    def set_user_disabled(self, user: User, name: str, disabled: bool) -> None:
        """Disabling ends the account's sessions; its API keys stop working at the next call."""
        self._denied(user, ADMIN, "disable or enable users", target=name)
        (self.accounts.disable if disabled else self.accounts.enable)(name, by=user.name)

    def delete_user(self, user: User, name: str) -> int:
        """Delete an account, its sessions and, at once, its saved conversations (issue 26);
        its API keys stop working with it. Returns how many conversations went with it."""
        self._denied(user, ADMIN, "delete users", target=name)
        self.accounts.delete(name, by=user.name)  # UnknownUser for a name that is not an account
        store = self.conversation_store
        count = store.delete(store.ids_of(name))
        self.audit.append(user=user.name, role=ADMIN, action="conversation_delete", owner=name, count=count,
                          reason="account deleted")
        return count

    def own_language(self, user: User) -> str | None:
        """The UI language the person chose last, kept with their account (None: never chose)."""
        return self.accounts.language(user.name)

    def set_own_language(self, user: User, language: str) -> None:
        self.accounts.set_language(user.name, language)

    def unlock_user(self, user: User, name: str) -> None:
        """Forget the failed sign-ins that locked an account out."""
        self._denied(user, ADMIN, "unlock users", target=name)
        self.accounts.unlock(name, by=user.name)

    def reset_password(self, user: User, name: str, password: str, must_change: bool = True) -> None:
        """An admin sets a local account's password; its sessions end."""
        self._denied(user, ADMIN, "reset passwords", target=name)
        self.accounts.set_password(name, password, must_change=must_change, by=user.name)

    def sync_directory(self, user: User) -> list[tuple[str, str]]:
        """Read every LDAP account again now: (name, what happened) each, every change audited."""
        self._denied(user, ADMIN, "sync accounts from the directory")
        return self.accounts.sync_directory(by=user.name)

    # --- personal API keys (app/identity/keys.py; the HTTP door resolves them with api_caller) ----------
    def create_api_key(
        self,
        user: User,
        scope: str,
        name: str = "",
        expires_days: float | None = None,
        owner: str | None = None,
        within: ApiKeyRecord | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """A key acting as `owner` (default: the caller). Only an admin (or the local operator)
        creates keys for another account; the key still carries only that account's rights.
        `within`: the API key this call came with; the new key may be no stronger and live
        no longer than it (else a short-lived read key could mint a lasting admin key)."""
        owner = owner or user.name
        check_scope(scope)
        if owner != user.name:
            self._denied(user, ADMIN, "create API keys for another account", owner=owner)
        account = self.accounts.get(owner)  # UnknownUser: an account must own every key
        needed = {ADMIN_SCOPE: ADMIN, AUDIT_SCOPE: AUDITOR}.get(scope)
        refusal = _beyond_key(within, scope, owner != user.name, expires_days)
        if self.accounts.is_disabled(owner) or (needed and needed not in account.roles):
            refusal = (
                f"{owner} cannot hold a {scope!r} key: it is disabled or lacks the {needed} role; "
                "give the account the role first, or create a 'read' key"
            )
        if refusal:
            self.audit.append(
                user=user.name,
                role=",".join(sorted(user.roles)),
                action="denied",
                attempted="create API key",
                owner=owner,
                scope=scope,
                key_scope=within.scope if within else None,
            )
            raise AccessDenied(refusal)
        record, key = self.api_keys.create(owner, scope, name, expires_days, by=user.name)
        self.audit.append(
            user=user.name,
            role=",".join(sorted(user.roles)),
            action="api_key_create",
            key_id=record.id,
            owner=owner,
            scope=scope,
            expires=record.expires,
            for_other_account=owner != user.name,
        )
        return record, key

    def list_api_keys(self, user: User, everyone: bool = False) -> list[ApiKeyRecord]:
        """The caller's own keys; with `everyone`, every key (admins only)."""
        if everyone:
            self._denied(user, ADMIN, "list every API key")
            return self.api_keys.list()
        return self.api_keys.list(user.name)

    def revoke_api_key(self, user: User, key_id: str) -> ApiKeyRecord:
        """Owners revoke their own keys; admins revoke anyone's. Another user's key id is
        answered like an unknown one (audited), so ids cannot be probed."""
        try:
            record = self.api_keys.get(key_id)
        except ApiKeyNotFound:
            record = None
        if record is None or (record.owner != user.name and ADMIN not in user.roles):
            self.audit.append(
                user=user.name,
                role=",".join(sorted(user.roles)),
                action="api_key_revoke",
                key_id=key_id,
                outcome="refused" if record else "not_found",
            )
            raise ApiKeyNotFound(f"no API key {key_id!r} among yours; list them with `kura keys list`")
        revoked = self.api_keys.revoke(key_id, by=user.name)
        self.audit.append(
            user=user.name,
            role=",".join(sorted(user.roles)),
            action="api_key_revoke",
            key_id=key_id,
            owner=record.owner,
        )
        return revoked

    def api_caller(self, key: str, scope: str) -> tuple[User, ApiKeyRecord]:
        """The account a key acts for, read again now (roles, groups, disabled), if the key is
        active and its scope covers `scope`. Raises InvalidApiKey or AccessDenied (audited)."""
        record = self.api_keys.resolve(key)
        try:
            owner = self.accounts.get(record.owner)
            disabled = self.accounts.is_disabled(record.owner)
        except UnknownUser:
            owner, disabled = None, True
        if owner is None or disabled:
            self.audit.append(
                user=record.owner, role="", action="api_key_refused", key_id=record.id, reason="owner disabled"
            )
            raise InvalidApiKey("the account that owns this API key is disabled or deleted")
        if scope != record.scope and not (scope == READ_SCOPE and record.scope in (ADMIN_SCOPE, AUDIT_SCOPE)):
            self.audit.append(
                user=owner.name,
                role=",".join(sorted(owner.roles)),
                action="denied",
                attempted=f"{scope} call",
                key_id=record.id,
                key_scope=record.scope,
            )
            raise AccessDenied(
                f"this API key has the {record.scope!r} scope and this call needs {scope!r}: "
                f"create a key with `kura keys create --scope {scope}`"
            )
        return owner, record


def _beyond_key(within: ApiKeyRecord | None, scope: str, for_other: bool, expires_days: float | None) -> str | None:
    """Why a call made with the key `within` may not create this key, or None."""
    if within is None:
        return None  # signed in to the UI, the shell, or the local operator's token
    if scope not in (within.scope, READ_SCOPE):
        allowed = "'read'" if within.scope == READ_SCOPE else f"{within.scope!r} or 'read'"
        return (
            f"this API key has the {within.scope!r} scope and creates only {allowed} keys; "
            f"create a {scope!r} key with `kura keys create --scope {scope}` or in the UI"
        )
    if for_other and within.scope != ADMIN_SCOPE:
        return "only an 'admin' key creates keys for another account; leave out 'owner' to create one for yourself"
    if within.expires is not None:
        left = (within.expires - time.time()) / 86400
        if expires_days is None or expires_days > left:
            return (
                f"this API key expires in {left:.2f} days and may not create a key that outlives it; "
                f"give expires_days of at most {left:.2f}"
            )
    return None
