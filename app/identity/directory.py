"""The company directory (LDAP / Active Directory): is this the person's password, and which
directory groups are they in. kura keeps no directory password: every sign-in asks the
directory, so a directory outage stops directory users (never the local admins).

Sign-in is the usual three steps: bind as the service account, find the person with an escaped
filter (a user name is never pasted into a filter raw), then bind as the person's DN.

Usage:
    directory = LdapDirectory.from_settings(settings)      # None when KURA_LDAP_URL is unset
    entry = directory.authenticate("alice", password)      # None: wrong name or password
    entry = directory.find("alice")                        # for `kura users sync`
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

_INVALID_CREDENTIALS = 49


def _close(connection: Connection) -> None:
    try:
        connection.unbind()
    except LDAPException:
        pass  # the socket is already gone (e.g. a refused TLS handshake closed it)


class DirectoryUnavailable(RuntimeError):
    """The directory cannot be reached, its certificate is not trusted, or the service bind
    fails. The message names the setting to check."""


@dataclass(frozen=True)
class DirectoryEntry:
    name: str  # the kura user name: the name attribute's value, lower-case
    dn: str
    groups: tuple[str, ...]  # directory group DNs


@dataclass(frozen=True)
class LdapDirectory:
    url: str
    tls: str  # starttls | ldaps | off
    ca_file: Path | None
    bind_dn: str | None
    bind_password: str | None
    user_base: str
    user_filter: str
    name_attribute: str
    group_source: str  # memberof | search
    group_base: str
    group_filter: str
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.url.startswith("ldaps://"):
            object.__setattr__(self, "tls", "ldaps")
        elif self.tls == "ldaps":
            raise ValueError(f"KURA_LDAP_TLS=ldaps needs an ldaps:// URL, not {self.url!r}")
        if "{username}" not in self.user_filter:
            raise ValueError(
                f"KURA_LDAP_USER_FILTER={self.user_filter!r} must contain {{username}}, "
                "e.g. (uid={username}) or (sAMAccountName={username})"
            )
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"KURA_LDAP_CA_FILE={str(self.ca_file)!r} does not exist; point it to the CA's PEM file")

    @classmethod
    def from_settings(cls, settings) -> LdapDirectory | None:  # noqa: ANN001  (KuraSettings)
        if not settings.ldap_url:
            return None
        return cls(
            url=settings.ldap_url,
            tls=settings.ldap_tls,
            ca_file=settings.ldap_ca_file,
            bind_dn=settings.ldap_bind_dn,
            bind_password=settings.ldap_bind_password,
            user_base=settings.ldap_user_base,
            user_filter=settings.ldap_user_filter,
            name_attribute=settings.ldap_name_attribute,
            group_source=settings.ldap_group_source,
            group_base=settings.ldap_group_base or settings.ldap_user_base,
            group_filter=settings.ldap_group_filter,
            timeout_s=settings.ldap_timeout_s,
        )

    # --- connections ---------------------------------------------------------------------
    def _server(self) -> Server:
        tls = None
        if self.tls != "off":
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                version=ssl.PROTOCOL_TLS_CLIENT,
                ca_certs_file=str(self.ca_file) if self.ca_file else None,
            )
        return Server(
            self.url,
            use_ssl=self.tls == "ldaps",
            tls=tls,
            get_info=NONE,
            connect_timeout=self.timeout_s,
        )

    def _bind(self, dn: str | None, password: str | None) -> Connection | None:
        """An open, bound connection, or None when the directory says the password is wrong.
        Anything else (no route, TLS refused, timeout) is DirectoryUnavailable."""
        connection = Connection(
            self._server(),
            user=dn,
            password=password,
            read_only=True,
            receive_timeout=max(1, round(self.timeout_s)),  # ldap3 packs it as an integer
            raise_exceptions=False,
        )
        try:
            connection.open()
            if self.tls == "starttls" and not connection.start_tls():
                raise DirectoryUnavailable(
                    f"the directory at {self.url} refused StartTLS ({connection.result.get('description')}); "
                    "enable TLS on it, or use an ldaps:// KURA_LDAP_URL"
                )
            if connection.bind():
                return connection
        except LDAPException as exc:
            _close(connection)
            raise DirectoryUnavailable(self._explain(exc)) from exc
        result = connection.result or {}
        _close(connection)
        if result.get("result") == _INVALID_CREDENTIALS:
            return None
        detail = f"{result.get('description')} {result.get('message', '')}".strip()
        raise DirectoryUnavailable(f"the directory at {self.url} refused the bind: {detail}")

    def _explain(self, exc: LDAPException) -> str:
        text = str(exc).strip("()'\",")
        if "certificate" in text.lower() or "ssl" in type(exc).__name__.lower() or "tls" in text.lower():
            return (
                f"the directory at {self.url} has a certificate kura does not trust ({text}); "
                "set KURA_LDAP_CA_FILE to the CA that signed it"
            )
        return f"the directory at {self.url} cannot be reached ({text}); check KURA_LDAP_URL and the network"

    def _service(self) -> Connection:
        connection = self._bind(self.bind_dn, self.bind_password)
        if connection is None:
            raise DirectoryUnavailable(
                f"the service account {self.bind_dn!r} cannot bind to {self.url}: wrong DN or password; "
                "fix KURA_LDAP_BIND_DN / KURA_LDAP_BIND_PASSWORD"
            )
        return connection

    # --- people ------------------------------------------------------------------------
    def _search_person(self, connection: Connection, name: str) -> DirectoryEntry | None:
        query = self.user_filter.replace("{username}", escape_filter_chars(name))
        attributes = [self.name_attribute] + (["memberOf"] if self.group_source == "memberof" else [])
        connection.search(self.user_base, query, SUBTREE, attributes=attributes, size_limit=2)
        if len(connection.entries) != 1:  # none, or ambiguous: never guess who this is
            return None
        found = connection.entries[0]
        values = found.entry_attributes_as_dict
        names = values.get(self.name_attribute) or []
        if not names:
            return None
        if self.group_source == "memberof":
            groups = tuple(str(g) for g in values.get("memberOf", []))
        else:
            group_query = self.group_filter.replace(
                "{user_dn}", escape_filter_chars(found.entry_dn)
            ).replace("{username}", escape_filter_chars(name))
            connection.search(self.group_base, group_query, SUBTREE, attributes=[])
            groups = tuple(e.entry_dn for e in connection.entries)
        return DirectoryEntry(str(names[0]).lower(), found.entry_dn, groups)

    def find(self, name: str) -> DirectoryEntry | None:
        """The person called `name` and their groups (service bind only), or None."""
        connection = self._service()
        try:
            return self._search_person(connection, name)
        finally:
            _close(connection)

    def authenticate(self, name: str, password: str) -> DirectoryEntry | None:
        """The person if `password` is theirs, else None. An empty password is refused here:
        to an LDAP server it means an anonymous bind, which 'succeeds'."""
        if not isinstance(name, str) or not name or not isinstance(password, str) or not password:
            return None
        entry = self.find(name)
        if entry is None:
            return None
        personal = self._bind(entry.dn, password)
        if personal is None:
            return None
        _close(personal)
        return entry

    def check(self) -> str:
        """What `kura doctor` prints: the service bind works and the user base can be searched."""
        connection = self._service()
        try:
            connection.search(self.user_base, "(objectClass=*)", SUBTREE, attributes=[], size_limit=1)
            result = connection.result or {}
            if result.get("result") not in (0, 4):  # 4: size limit exceeded, i.e. it has entries
                raise DirectoryUnavailable(
                    f"the service account cannot search KURA_LDAP_USER_BASE={self.user_base!r}: "
                    f"{result.get('description')}; fix the base DN or the account's rights"
                )
        finally:
            _close(connection)
        return f"{self.url} ({self.tls}), service bind as {self.bind_dn} works"
