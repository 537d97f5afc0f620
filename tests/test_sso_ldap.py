"""Sign-in against a real OpenLDAP directory (Debian's slapd, started per test on 127.0.0.1
with StartTLS and its own throw-away CA): passwords are checked by the directory, groups and
roles come from it through the mapping, and a group taken away in the directory takes the
documents away in kura at the next sign-in or `kura users sync`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.audit.log import AuditLog
from app.identity.accounts import (
    AccountConflict,
    AccountDisabled,
    Accounts,
    DirectoryDown,
    LoginFailed,
    ManagedByDirectory,
    NotMapped,
    SessionExpired,
)
from app.identity.directory import DirectoryUnavailable, LdapDirectory
from app.platform.settings import KuraSettings
from tests.sso_servers import (
    BASE,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    free_port,
    group_dn,
    person_dn,
)

ALICE = PEOPLE["alice"][0]


@pytest.fixture
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def directory_settings(data_dir: Path, slapd: Slapd, **overrides: object) -> KuraSettings:
    values: dict[str, object] = dict(
        data_dir=data_dir,
        ldap_url=slapd.url,
        ldap_tls="starttls",
        ldap_ca_file=slapd.ca_file,
        ldap_bind_dn=SERVICE_DN,
        ldap_bind_password=SERVICE_PASSWORD,
        ldap_user_base=f"ou=people,{BASE}",
        # People the directory marks as gone are not found, as AD's disabled-account filter does.
        ldap_user_filter="(&(objectClass=inetOrgPerson)(uid={username})(!(employeeType=disabled)))",
        ldap_group_base=f"ou=groups,{BASE}",
        directory_group_map={group_dn("hr"): "hr", "finance": "finance"},  # by DN and by CN
        directory_role_map={"staff": "employee", "kura-admins": "admin"},
        directory_default_roles=(),
    )
    values.update(overrides)
    return KuraSettings(**values)


@pytest.fixture
def settings(data_dir: Path, slapd: Slapd) -> KuraSettings:
    return directory_settings(data_dir, slapd)


@pytest.fixture
def accounts(settings: KuraSettings) -> Iterator[Accounts]:
    settings.ensure_dirs()
    store = Accounts.from_settings(settings, audit=AuditLog(settings.audit_path))
    yield store
    store.close()


def audit_entries(settings: KuraSettings) -> list[dict]:
    return [json.loads(line) for line in settings.audit_path.read_text().splitlines()]


def test_directory_user_signs_in_with_groups_and_roles_from_the_mapping(accounts: Accounts, settings) -> None:
    user = accounts.authenticate("alice", ALICE)
    assert user.name == "alice"
    assert user.roles == {"employee"}
    assert user.groups == ("finance", "hr")  # staff is in the directory but not mapped to a group
    info = accounts.info("alice")
    assert info.source == "ldap"
    assert info.synced_groups == ("finance", "hr")
    assert info.last_synced is not None
    token = accounts.open_session(user)
    assert accounts.user_for_session(token).groups == ("finance", "hr")
    added = [e for e in audit_entries(settings) if e["action"] == "user_change" and e.get("target") == "alice"]
    assert added and added[0]["change"] == "add" and added[0]["source"] == "ldap"
    assert added[0]["user"] == "directory" and added[0]["role"] == "system"
    assert any(e["action"] == "login" and e["user"] == "alice" for e in audit_entries(settings))


def test_directory_roles_come_from_directory_groups(accounts: Accounts) -> None:
    dave = accounts.authenticate("dave", PEOPLE["dave"][0])
    assert dave.roles == {"admin", "employee"}
    assert dave.groups == ()


def test_wrong_password_unknown_name_and_empty_password_are_refused_alike(accounts: Accounts) -> None:
    failures = []
    for name, password in (("alice", "not-her-password"), ("nobody", ALICE), ("alice", "")):
        with pytest.raises(LoginFailed) as caught:
            accounts.authenticate(name, password)
        failures.append(str(caught.value))
    # An empty password would be an anonymous bind, which an LDAP server lets "succeed".
    assert failures == ["wrong user name or password"] * 3
    assert [u.name for u in accounts.list()] == []  # nobody got an account from a failed sign-in


def test_ldap_injection_in_the_user_name_matches_nobody(accounts: Accounts, settings: KuraSettings) -> None:
    directory = LdapDirectory.from_settings(settings)
    assert directory is not None
    # Unescaped, "*)(uid=*" turns (uid={username}) into a filter that matches every person.
    for hostile in ("*)(uid=*", "*", "alice)(|(uid=*", "*)(objectClass=*"):
        assert directory.find(hostile) is None, hostile
        with pytest.raises(LoginFailed):
            accounts.authenticate(hostile, ALICE)
    assert directory.find("alice") is not None  # the same search finds a real name


def test_a_person_disabled_in_the_directory_or_in_kura_cannot_sign_in(accounts: Accounts) -> None:
    with pytest.raises(LoginFailed):  # carol is marked as gone in the directory: not found
        accounts.authenticate("carol", PEOPLE["carol"][0])
    bob = accounts.authenticate("bob", PEOPLE["bob"][0])
    token = accounts.open_session(bob)
    accounts.disable("bob")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    with pytest.raises(AccountDisabled, match="disabled"):
        accounts.authenticate("bob", PEOPLE["bob"][0])  # the right directory password is not enough


def test_a_group_added_in_the_directory_applies_at_the_next_sign_in(
    accounts: Accounts, slapd: Slapd, settings: KuraSettings
) -> None:
    assert accounts.authenticate("eve", PEOPLE["eve"][0]).groups == ()
    slapd.move_member("eve", None, "hr")
    assert accounts.authenticate("eve", PEOPLE["eve"][0]).groups == ("hr",)
    synced = [e for e in audit_entries(settings) if e.get("change") == "directory_sync"]
    assert synced[-1]["target"] == "eve" and synced[-1]["groups_added"] == ["hr"]


def test_sync_takes_a_group_away_and_the_hr_document_leaves_that_users_search(
    tmp_path: Path, settings: KuraSettings, slapd: Slapd, embedder
) -> None:  # noqa: ANN001
    from app.identity.users import local_operator
    from app.service import KuraService

    folder = tmp_path / "hr-docs"
    folder.mkdir()
    (folder / "salary-bands.md").write_text(
        "# Salary bands 2027\n\nThe HR salary bands for 2027 put senior engineers at band S4 "
        "with a yearly review in March.\n",
        encoding="utf-8",
    )
    service = KuraService(settings.model_copy(update={"min_relevance": 0.0, "min_dense_score": 0.0}), embedder=embedder)
    try:
        report = service.ingest(local_operator(), folder, ("hr",))
        assert not report.failures, report.failures
        accounts = service.accounts
        bob = accounts.authenticate("bob", PEOPLE["bob"][0])
        token = accounts.open_session(bob)
        question = "What are the HR salary bands for 2027?"
        found = service.search(accounts.user_for_session(token), question)
        assert any("salary-bands.md" in p.source_path for p in found)

        slapd.move_member("bob", "hr", None)  # bob leaves HR in the directory
        results = dict(accounts.sync_directory())
        assert results["bob"].startswith("groups none") and "-hr" in results["bob"]

        still_signed_in = accounts.user_for_session(token)  # same session, groups read anew
        assert still_signed_in.groups == ()
        assert not any("salary-bands.md" in p.source_path for p in service.search(still_signed_in, question))
        change = [e for e in audit_entries(settings) if e.get("change") == "directory_sync"][-1]
        assert change["target"] == "bob" and change["groups_removed"] == ["hr"]
    finally:
        service.close()


def test_sync_disables_a_person_the_directory_no_longer_finds(
    accounts: Accounts, slapd: Slapd, settings: KuraSettings
) -> None:
    dave = accounts.authenticate("dave", PEOPLE["dave"][0])
    token = accounts.open_session(dave)
    slapd.modify(f"dn: {person_dn('dave')}\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n")
    assert dict(accounts.sync_directory())["dave"] == "disabled: not found in the directory"
    assert accounts.is_disabled("dave")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    assert any(
        e.get("change") == "disable" and e.get("target") == "dave" for e in audit_entries(settings)
    )


def test_a_person_who_leaves_every_role_group_loses_access_at_once(accounts: Accounts, slapd: Slapd) -> None:
    eve = accounts.authenticate("eve", PEOPLE["eve"][0])
    token = accounts.open_session(eve)
    slapd.move_member("eve", "staff", None)  # staff was eve's only group that gives a role
    assert dict(accounts.sync_directory())["eve"] == "disabled: no directory group gives a kura role"
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    with pytest.raises(NotMapped, match="gives a kura role"):
        accounts.authenticate("eve", PEOPLE["eve"][0])


def test_directory_groups_are_not_edited_by_hand_only_an_audited_extra(
    accounts: Accounts, settings: KuraSettings
) -> None:
    accounts.authenticate("alice", ALICE)
    for change in (
        lambda: accounts.set_groups("alice", ["managers"]),
        lambda: accounts.add_to_group("alice", "managers"),
        lambda: accounts.remove_from_group("alice", "hr"),
        lambda: accounts.set_roles("alice", ["admin"]),
        lambda: accounts.set_password("alice", "A-new-local-password-9"),
    ):
        with pytest.raises(ManagedByDirectory, match="LDAP account"):
            change()
    accounts.set_extra_groups("alice", ["managers"], by="local-operator")
    assert accounts.get("alice").groups == ("finance", "hr", "managers")
    # The next sign-in writes the directory's groups again and keeps the explicit extra.
    assert accounts.authenticate("alice", ALICE).groups == ("finance", "hr", "managers")
    info = accounts.info("alice")
    assert (info.synced_groups, info.extra_groups) == (("finance", "hr"), ("managers",))
    extra = [e for e in audit_entries(settings) if e.get("change") == "set_extra_groups"]
    assert extra and extra[0]["extra_groups"] == ["managers"] and extra[0]["user"] == "local-operator"


def test_outage_stops_directory_users_but_never_the_local_admin(
    accounts: Accounts, settings: KuraSettings
) -> None:
    one_time = accounts.bootstrap_admin("Harbor-lantern-local-9")
    assert one_time is None
    accounts.authenticate("alice", ALICE)  # alice has signed in before: kura still keeps no password
    dead = settings.model_copy(update={"ldap_url": f"ldap://127.0.0.1:{free_port()}"})
    offline = Accounts.from_settings(dead, audit=AuditLog(settings.audit_path))
    try:
        with pytest.raises(DirectoryDown, match="cannot be reached"):
            offline.authenticate("alice", ALICE)
        assert offline.authenticate("admin", "Harbor-lantern-local-9").name == "admin"
    finally:
        offline.close()


def test_a_directory_name_cannot_take_over_a_local_account(accounts: Accounts) -> None:
    accounts.add("alice", "Copper-kettle-local-7", ["admin", "employee"])
    with pytest.raises(LoginFailed):  # the local account answers for "alice": LDAP password is wrong
        accounts.authenticate("alice", ALICE)
    with pytest.raises(AccountConflict, match="another kura account"):
        accounts.authenticate("ALICE", ALICE)  # the directory says this is alice, who is local
    assert accounts.info("alice").source == "local"


def test_untrusted_certificate_ldaps_and_group_search(data_dir: Path, slapd: Slapd) -> None:
    untrusted = LdapDirectory.from_settings(directory_settings(data_dir, slapd, ldap_ca_file=None))
    with pytest.raises(DirectoryUnavailable, match="KURA_LDAP_CA_FILE"):
        untrusted.find("alice")
    ldaps = LdapDirectory.from_settings(directory_settings(data_dir, slapd, ldap_url=slapd.ldaps_url))
    assert ldaps.tls == "ldaps" and ldaps.authenticate("bob", PEOPLE["bob"][0]) is not None
    searched = LdapDirectory.from_settings(directory_settings(data_dir, slapd, ldap_group_source="search"))
    entry = searched.authenticate("alice", ALICE)
    assert entry is not None and set(entry.groups) == {group_dn(g) for g in ("hr", "finance", "staff")}


def test_doctor_checks_the_directory_and_the_service_bind(data_dir: Path, slapd: Slapd) -> None:
    from app.doors.cli.models import run_checks

    def ldap_check(settings: KuraSettings):  # noqa: ANN202
        return next(c for c in run_checks(settings) if c.what == "LDAP directory")

    ok = ldap_check(directory_settings(data_dir, slapd))
    assert ok.status == "OK" and "service bind" in ok.detail
    bad = ldap_check(directory_settings(data_dir, slapd, ldap_bind_password="wrong"))
    assert bad.status == "FAIL" and "KURA_LDAP_BIND_PASSWORD" in bad.detail


def test_kura_users_sync_prints_what_changed(data_dir: Path, slapd: Slapd, monkeypatch) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from app.doors.cli.main import app

    settings = directory_settings(data_dir, slapd)
    for name, value in settings.model_dump(exclude_defaults=True).items():
        text = json.dumps(value) if isinstance(value, dict | tuple | list) else str(value)
        monkeypatch.setenv(f"KURA_{name.upper()}", text)
    settings.ensure_dirs()
    accounts = Accounts.from_settings(settings)
    accounts.authenticate("bob", PEOPLE["bob"][0])
    accounts.close()
    slapd.move_member("bob", "hr", None)
    result = CliRunner().invoke(app, ["users", "sync"])
    assert result.exit_code == 0, result.output
    assert "bob" in result.output and "-hr" in result.output
    listed = CliRunner().invoke(app, ["users", "list"])
    assert "ldap" in listed.output
