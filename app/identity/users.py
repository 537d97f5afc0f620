"""Who is asking: users, their roles and their groups.

Roles: `employee` (search and ask), `admin` (ingest, delete, manage users and permissions),
`auditor` (read the audit log). A user may hold several. Every user belongs to the group
`everyone`: documents published to it (`--groups everyone`) are readable by every employee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMPLOYEE, ADMIN, AUDITOR = "employee", "admin", "auditor"
ROLES = frozenset({EMPLOYEE, ADMIN, AUDITOR})
EVERYONE = "everyone"
_GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class AccessDenied(PermissionError):
    """The user's role does not allow this action."""


def check_group_name(name: str) -> str:
    if not _GROUP_NAME.match(name):
        raise ValueError(
            f"group name {name!r} is not valid: use 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_groups(text: str | None) -> tuple[str, ...]:
    """'hr, managers' -> ('hr', 'managers'); empty -> () (an ingest then asks who may read it)."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return tuple(sorted({check_group_name(n) for n in names}))


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str] = frozenset({EMPLOYEE})
    groups: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = set(self.roles) - ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; use {sorted(ROLES)}")

    @property
    def read_groups(self) -> tuple[str, ...]:
        """The ACL groups this user's searches are filtered by."""
        return tuple(sorted({EVERYONE, *self.groups}))

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def require(self, role: str, action: str) -> None:
        if role not in self.roles:
            raise AccessDenied(f"{self.name} may not {action}: it needs the {role} role")


def local_operator() -> User:
    """The person at the server's shell: the CLI acts as an admin employee in every group."""
    return User("local-operator", frozenset({EMPLOYEE, ADMIN, AUDITOR}))
