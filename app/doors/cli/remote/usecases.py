"""The People and Auditing use cases of a running `kura serve`, reached over its API with the
operator token (app/doors/cli/remote/client.py). Same method names, arguments and results as
app/service/people.py and auditing.py, so `kura users` and `kura audit` make one call that
lands on the in-process service or on the server's; either way the server's (or this
process's) service checks the role and writes the audit entry.

The `user` argument is there to keep the signatures identical: over the API the caller is
whoever the token says, i.e. the local operator.

Usage:
    people = RemotePeople(client) if client else KuraService(settings)
    people.set_user_roles(local_operator(), "bob", ["employee", "admin"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from app.audit.alerts import Rule
from app.audit.analytics import Overview, ShownRow, WhoSaw
from app.audit.report import FIGURES
from app.doors.cli.remote.client import ServerClient
from app.identity.accounts import AccountInfo
from app.identity.users import User
from app.service.audit_analytics import EntryProof, Report


def _part(text: str) -> str:
    return quote(text, safe="")


def _user(data: dict[str, Any]) -> User:
    return User(data["name"], frozenset(data["roles"]), tuple(data["groups"]))


def _info(data: dict[str, Any]) -> AccountInfo:
    return AccountInfo(
        user=_user(data),
        source=data["source"],
        disabled=data["disabled"],
        must_change_password=data["must_change_password"],
        synced_groups=tuple(data["synced_groups"]),
        extra_groups=tuple(data["extra_groups"]),
        last_synced=data["last_synced"],
    )


class RemotePeople:
    """Accounts through `/api/v1/users` (app/doors/http/api/users.py)."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def user_infos(self, user: User) -> list[AccountInfo]:
        return [_info(d) for d in self.client.get("/api/v1/users")]

    def user_info(self, user: User, name: str) -> AccountInfo:
        return _info(self.client.get(f"/api/v1/users/{_part(name)}"))

    def add_user(
        self,
        user: User,
        name: str,
        password: str,
        roles: Sequence[str],
        groups: Sequence[str],
        must_change_password: bool = True,
    ) -> User:
        body = {
            "name": name,
            "password": password,
            "roles": list(roles),
            "groups": list(groups),
            "must_change_password": must_change_password,
        }
        return _user(self.client.post("/api/v1/users", body))

    def set_user_roles(self, user: User, name: str, roles: Sequence[str]) -> User:
        return _user(self.client.put(f"/api/v1/users/{_part(name)}/roles", {"roles": list(roles)}))

    def add_user_to_group(self, user: User, name: str, group: str) -> User:
        return _user(self.client.post(f"/api/v1/users/{_part(name)}/groups/{_part(group)}", {}))

    def remove_user_from_group(self, user: User, name: str, group: str) -> User:
        return _user(self.client.delete(f"/api/v1/users/{_part(name)}/groups/{_part(group)}"))

    def set_user_extra_groups(self, user: User, name: str, groups: Sequence[str]) -> User:
        return _user(self.client.put(f"/api/v1/users/{_part(name)}/extra-groups", {"groups": list(groups)}))

    def set_user_disabled(self, user: User, name: str, disabled: bool) -> None:
        self.client.put(f"/api/v1/users/{_part(name)}/disabled", {"disabled": disabled})

    def unlock_user(self, user: User, name: str) -> None:
        self.client.post(f"/api/v1/users/{_part(name)}/unlock", {})

    def delete_user(self, user: User, name: str) -> int:
        return int(self.client.delete(f"/api/v1/users/{_part(name)}")["conversations_deleted"])

    def reset_password(self, user: User, name: str, password: str, must_change: bool = True) -> None:
        self.client.put(f"/api/v1/users/{_part(name)}/password", {"password": password, "must_change": must_change})

    def sync_directory(self, user: User) -> list[tuple[str, str]]:
        return [(r["name"], r["outcome"]) for r in self.client.post("/api/v1/users/sync", {})]

    def close(self) -> None:
        self.client.close()


class RemoteAuditing:
    """The audit log through `/api/v1/audit` (app/doors/http/api/audit.py)."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    @staticmethod
    def _filters(**given: object) -> dict[str, object]:
        return {k: v for k, v in given.items() if v is not None}  # an empty filter is no filter

    def search_audit(
        self,
        user: User,
        who: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        params = self._filters(user=who, action=action, since=since, until=until, limit=limit)
        return self.client.get("/api/v1/audit", **params)["entries"]

    def export_audit(
        self,
        user: User,
        dest: Path,
        fmt: str = "jsonl",
        who: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> int:
        params = self._filters(format=fmt, user=who, action=action, since=since, until=until)
        response = self.client.download("/api/v1/audit/export", **params)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(response.content)
        return int(response.headers["X-Kura-Entries"])

    def verify_audit(self, user: User) -> list[str]:
        """The problems the server found (as text); [] when the chain is intact."""
        return list(self.client.get("/api/v1/audit/verify")["problems"])

    def close(self) -> None:
        self.client.close()


class RemoteAuditAnalytics(RemoteAuditing):
    """The auditor's workbench through `/api/v1/audit/...` (app/doors/http/api/audit_analytics.py),
    with the service's result types."""

    def audit_overview(self, user: User, since: str | None = None, until: str | None = None) -> Overview:
        data = self.client.get("/api/v1/audit/overview", **self._filters(since=since, until=until))
        return Overview(**{f.name: data[f.name] for f in fields(Overview)})

    def who_saw(
        self,
        user: User,
        document: str | None = None,
        folder: str | None = None,
        group: str | None = None,
        person: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 500,
    ) -> WhoSaw:
        params = self._filters(document=document, folder=folder, group=group, person=person, since=since,
                               until=until, limit=limit)
        data = self.client.get("/api/v1/audit/who-saw", **params)
        return WhoSaw(**{**data, "rows": [ShownRow(**r) for r in data["rows"]]})

    def audit_alerts(self, user: User, limit: int = 200) -> tuple[list[Rule], list[dict]]:
        data = self.client.get("/api/v1/audit/alerts", limit=limit)
        return [Rule(**r) for r in data["rules"]], data["alerts"]

    def set_alert_rule(
        self, user: User, name: str, threshold: int, window_s: int, enabled: bool = True,
        params: dict[str, Any] | None = None,
    ) -> Rule:
        body = {"threshold": threshold, "window_s": window_s, "enabled": enabled, "params": params}
        return Rule(**self.client.put(f"/api/v1/audit/alerts/rules/{_part(name)}", body))

    def audit_report(self, user: User, group: str, month: str, fmt: str = "csv", lang: str = "en") -> Report:
        response = self.client.download("/api/v1/audit/report", group=group, month=month, format=fmt, lang=lang)
        figures = {k: int(response.headers[f"X-Kura-{k.title()}"]) for k in FIGURES}
        name = f"kura-audit-{group}-{month}.{fmt}"
        return Report(name, response.headers["content-type"].split(";")[0], response.content, figures)

    def audit_entry(self, user: User, seq: int) -> EntryProof:
        return EntryProof(**self.client.get(f"/api/v1/audit/entries/{int(seq)}"))
