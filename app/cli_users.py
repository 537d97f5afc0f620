"""`kura users ...` (local accounts) and `kura acl set` (who may read ingested documents).

The operator at the server's shell acts as admin; every change lands in the audit log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.accounts import (
    LOCAL,
    AccountInfo,
    Accounts,
    ManagedByDirectory,
    PasswordPolicyError,
    UnknownUser,
    UserExists,
)
from app.audit import AuditLog
from app.settings import KuraSettings
from app.users import EMPLOYEE, local_operator, parse_groups

users_app = typer.Typer(help="Local user accounts: roles, groups, passwords.", no_args_is_help=True)
acl_app = typer.Typer(help="Which groups may read ingested documents.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _accounts() -> Accounts:
    settings = KuraSettings()
    settings.ensure_dirs()
    return Accounts.from_settings(settings, audit=AuditLog(settings.audit_path))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ask_password(password: str | None, confirm: bool = True) -> str:
    return password or typer.prompt("password", hide_input=True, confirmation_prompt=confirm)


def _run(action) -> None:  # noqa: ANN001  (a zero-argument callable)
    """Turn a user's mistake into one red line and exit code 2; nothing is half-changed."""
    try:
        action()
    except (ValueError, UnknownUser, UserExists, PasswordPolicyError, ManagedByDirectory) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@users_app.command("bootstrap")
def bootstrap(
    password: Annotated[
        bool, typer.Option("--password", help="type the admin password instead of generating one")
    ] = False,
) -> None:
    """First run: create the one 'admin' account (a printed one-time password unless --password)."""
    accounts = _accounts()
    if accounts.list():
        err.print("users already exist; add more with `kura users add`")
        raise typer.Exit(1)

    def act() -> None:
        one_time = accounts.bootstrap_admin(_ask_password(None) if password else None)
        if one_time:
            console.print(
                f"created user [bold]admin[/bold] with one-time password: [bold]{one_time}[/bold]"
            )
            console.print("it is shown only now and must be changed at the first login")
        else:
            console.print("created user [bold]admin[/bold] with the password you chose")

    _run(act)


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="login name: lower-case letters, digits, . _ @ -")],
    roles: Annotated[
        str, typer.Option(help="comma-separated: employee, admin, auditor")
    ] = EMPLOYEE,
    groups: Annotated[str, typer.Option(help="comma-separated ACL groups, e.g. hr,managers")] = "",
    password: Annotated[
        str | None, typer.Option(help="initial password (prompted if not given)")
    ] = None,
    must_change: Annotated[
        bool, typer.Option(help="the user must change it at first login")
    ] = True,
) -> None:
    """Add a user."""
    accounts = _accounts()
    _run(
        lambda: accounts.add(
            name, _ask_password(password), _split(roles), _split(groups), must_change
        )
    )
    console.print(f"added {name}")


@users_app.command("list")
def list_users() -> None:
    """List users with their roles, groups, state, and where they come from (local, LDAP, OIDC)."""
    accounts = _accounts()
    table = Table()
    for column in ("user", "roles", "groups", "state", "source", "last synced"):
        table.add_column(column)
    for info in accounts.list_info():
        user = info.user
        state = "disabled" if info.disabled else "active"
        if info.must_change_password:
            state += ", must change password"
        table.add_row(
            user.name,
            ", ".join(sorted(user.roles)),
            describe_groups(info),
            state,
            info.source,
            _when(info.last_synced) if info.last_synced else "-",
        )
    console.print(table, highlight=False)


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: no more logins, open sessions end now."""
    accounts = _accounts()
    _run(lambda: accounts.disable(name))
    console.print(f"disabled {name}")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again."""
    accounts = _accounts()
    _run(lambda: accounts.enable(name))
    console.print(f"enabled {name}")


@users_app.command("unlock")
def unlock(name: Annotated[str, typer.Argument()]) -> None:
    """Clear a lockout after too many failed logins."""
    _accounts().unlock(name)
    console.print(f"unlocked {name}")


@users_app.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument()],
    password: Annotated[
        str | None, typer.Option(help="new password (prompted if not given)")
    ] = None,
    must_change: Annotated[bool, typer.Option(help="the user must change it at next login")] = True,
) -> None:
    """Set a user's password (ends the user's sessions)."""
    accounts = _accounts()
    _run(lambda: accounts.set_password(name, _ask_password(password), must_change=must_change))
    console.print(f"password of {name} set")


@users_app.command("add-to-group")
def add_to_group(
    name: Annotated[str, typer.Argument()], group: Annotated[str, typer.Argument()]
) -> None:
    """Let a user read documents of GROUP (applies to the next query)."""
    accounts = _accounts()
    _run(lambda: accounts.add_to_group(name, group))
    console.print(f"{name} is now in {', '.join(accounts.get(name).groups)}")


@users_app.command("remove-from-group")
def remove_from_group(
    name: Annotated[str, typer.Argument()], group: Annotated[str, typer.Argument()]
) -> None:
    """Stop a user reading documents of GROUP (applies to the next query)."""
    accounts = _accounts()
    _run(lambda: accounts.remove_from_group(name, group))
    console.print(f"{name} is now in {', '.join(accounts.get(name).groups) or 'no groups'}")


@users_app.command("set-roles")
def set_roles(
    name: Annotated[str, typer.Argument()],
    roles: Annotated[str, typer.Argument(help="comma-separated: employee, admin, auditor")],
) -> None:
    """Replace a user's roles."""
    accounts = _accounts()
    _run(lambda: accounts.set_roles(name, _split(roles)))
    console.print(f"{name} now has roles {', '.join(sorted(accounts.get(name).roles))}")


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def describe_groups(info: AccountInfo) -> str:
    """'hr, finance' for a local account; 'hr (directory), managers (extra)' for the others."""
    if info.source == LOCAL:
        return ", ".join(info.user.groups) or "-"
    parts = [f"{g} (directory)" for g in info.synced_groups] + [f"{g} (extra)" for g in info.extra_groups]
    return ", ".join(parts) or "-"


@users_app.command("sync")
def sync() -> None:
    """Read every LDAP account again from the directory: groups and roles as the directory has
    them now; people it no longer finds are disabled. Every change goes to the audit log."""
    from app.directory import DirectoryUnavailable

    accounts = _accounts()
    try:
        results = accounts.sync_directory()
    except (ValueError, DirectoryUnavailable) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    for name, outcome in results:
        console.print(f"{name}: {outcome}", highlight=False)
    console.print(f"{len(results)} directory accounts read")


@users_app.command("extra-groups")
def extra_groups(
    name: Annotated[str, typer.Argument()],
    groups: Annotated[str, typer.Argument(help="comma-separated; empty ('') removes every extra")],
) -> None:
    """A directory account's local override: groups on top of the directory's (audited)."""
    accounts = _accounts()
    _run(lambda: accounts.set_extra_groups(name, _split(groups)))
    console.print(f"{name} is now in {', '.join(accounts.get(name).groups) or 'no groups'}")


@acl_app.command("set")
def acl_set(
    target: Annotated[str, typer.Argument(help="an ingested file or folder, or a document id")],
    groups: Annotated[str, typer.Option(help="comma-separated ACL groups that may read it")],
) -> None:
    """Change who may read TARGET without re-embedding; applies to the next query."""
    from app.service import DocumentNotFound, KuraService

    service = KuraService(KuraSettings())
    try:
        changed = service.set_acl(
            local_operator(), str(Path(target)) if "/" in target else target, parse_groups(groups)
        )
    except (DocumentNotFound, ValueError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        service.close()
    console.print(f"{changed} files now readable by {groups or 'everyone'}")
