"""Directory groups -> kura ACL groups and roles: one mapping for LDAP / AD and OpenID Connect.

A key is a directory group's DN (`cn=HR,ou=Groups,dc=example,dc=com`), its CN (`HR`), or the
value an identity provider puts in the groups claim; keys compare case-insensitively, and a
DN also matches by its CN. Groups that are not in the mapping give nothing: a directory holds
hundreds of groups, and only the mapped ones may open documents in kura.

Usage:
    mapping = GroupMap({"cn=hr,ou=groups,dc=example,dc=com": "hr"}, {"kura-admins": "admin"})
    roles, groups = mapping.apply(["cn=HR,ou=groups,dc=example,dc=com", "cn=staff,..."])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from app.identity.users import ROLES, check_group_name


class NoRoleMapped(ValueError):
    """The person is in no directory group that gives a kura role, and there is no default."""


def _keys(directory_group: str) -> set[str]:
    """The lookup keys of one directory group: itself, its normalised DN, and its CN."""
    text = directory_group.strip()
    keys = {text.lower()}
    if "=" in text:
        try:
            rdns = parse_dn(text, escape=False, strip=True)
        except LDAPInvalidDnError:
            return keys
        keys.add(",".join(f"{attr.lower()}={value.lower()}" for attr, value, _ in rdns))
        if rdns and rdns[0][0].lower() == "cn":
            keys.add(rdns[0][1].lower())
    return keys


def _normalised(mapping: Mapping[str, str], check, setting: str) -> dict[str, str]:  # noqa: ANN001
    normalised: dict[str, str] = {}
    for key, value in mapping.items():
        try:
            checked = check(str(value).strip())
        except ValueError as exc:
            raise ValueError(f"{setting}: {key!r} -> {value!r}: {exc}") from None
        for variant in _keys(str(key)):
            normalised[variant] = checked
    return normalised


def _check_role(value: str) -> str:
    if value not in ROLES:
        raise ValueError(f"unknown role {value!r}; use one of {sorted(ROLES)}")
    return value


@dataclass(frozen=True)
class GroupMap:
    """What a person's directory groups mean in kura."""

    groups: Mapping[str, str]
    roles: Mapping[str, str]
    default_roles: frozenset[str] = frozenset({"employee"})

    def __post_init__(self) -> None:
        # Keys become lower-case DNs and CNs once, so apply() is a set of dict lookups.
        object.__setattr__(
            self, "groups", _normalised(self.groups, check_group_name, "KURA_DIRECTORY_GROUP_MAP")
        )
        object.__setattr__(
            self, "roles", _normalised(self.roles, _check_role, "KURA_DIRECTORY_ROLE_MAP")
        )
        unknown = set(self.default_roles) - ROLES
        if unknown:
            raise ValueError(
                f"KURA_DIRECTORY_DEFAULT_ROLES: unknown roles {sorted(unknown)}; use {sorted(ROLES)}"
            )

    @classmethod
    def from_settings(cls, settings) -> GroupMap:  # noqa: ANN001  (KuraSettings; avoids a cycle)
        return cls(
            dict(settings.directory_group_map),
            dict(settings.directory_role_map),
            frozenset(settings.directory_default_roles),
        )

    def apply(self, directory_groups: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
        """(roles, kura groups) for a person in `directory_groups`. Raises NoRoleMapped when
        none of the groups gives a role and there is no default role."""
        roles: set[str] = set()
        groups: set[str] = set()
        for directory_group in directory_groups:
            keys = _keys(directory_group)
            groups.update(self.groups[k] for k in keys if k in self.groups)
            roles.update(self.roles[k] for k in keys if k in self.roles)
        if not roles:
            roles = set(self.default_roles)
        if not roles:
            raise NoRoleMapped(
                "none of this person's directory groups gives a kura role; an admin adds one to "
                "KURA_DIRECTORY_ROLE_MAP (or sets KURA_DIRECTORY_DEFAULT_ROLES)"
            )
        return frozenset(roles), tuple(sorted(groups))
