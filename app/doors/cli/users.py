"""`kura users ...` (accounts) and `kura acl set` (who may read ingested documents).

The operator at the server's shell acts as admin (`local_operator()`): each command calls the
People use case (app/service/people.py) through the running server's API when a `kura serve`
owns this data directory, else in-process. Either way the service checks the role and writes
the audit entry. Only `bootstrap` opens the account store directly: it runs before any account
(and so any admin) exists, and SQLite lets it share the file with a running server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import app.doors.cli.remote.commands as cli_remote
from app.audit.log import AuditKeyMissing, AuditLog
from app.doors.cli.remote.client import ServerError
from app.identity.accounts import (
    LOCAL,
    AccountInfo,
    Accounts,
    ManagedByDirectory,
    PasswordPolicyError,
    UnknownUser,
    UserExists,
)
from app.identity.users import EMPLOYEE, AccessDenied, local_operator, parse_groups
from app.platform.settings import KuraSettings

users_app = typer.Typer(help="Local user accounts: roles, groups, passwords.", no_args_is_help=True)
acl_app = typer.Typer(help="Which groups may read ingested documents.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _accounts() -> Accounts:
    settings = KuraSettings()
    settings.ensure_dirs()
    return Accounts.from_settings(settings, audit=AuditLog(settings.audit_path))


def _people():  # noqa: ANN202 - a context manager yielding the People use case
    from app.doors.cli.remote.usecases import RemotePeople

    return cli_remote.use_case(RemotePeople)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ask_password(password: str | None, confirm: bool = True) -> str:
    return password or typer.prompt("password", hide_input=True, confirmation_prompt=confirm)


_MISTAKES = (
    ValueError,
    UnknownUser,
    UserExists,
    PasswordPolicyError,
    ManagedByDirectory,
    AccessDenied,
    AuditKeyMissing,
)


def _run(action: Callable[[], Any]) -> Any:
    """Turn a user's mistake into one red line and exit code 2; nothing is half-changed. A
    server's refusal reads the same as the local one (its message alone)."""
    from app.identity.directory import DirectoryUnavailable

    try:
        return action()
    except (*_MISTAKES, DirectoryUnavailable) as exc:
        message = str(exc).strip("'\"")
    except ServerError as exc:
        message = exc.reason
    err.print(f"[red]{escape(message)}[/red]", highlight=False)
    raise typer.Exit(2)


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
    secret = _ask_password(password)
    with _people() as people:
        _run(
            lambda: people.add_user(
                local_operator(), name, secret, _split(roles), _split(groups), must_change_password=must_change
            )
        )
    console.print(f"added {name}")


@users_app.command("list")
def list_users() -> None:
    """List users with their roles, groups, state, and where they come from (local, LDAP, OIDC)."""
    with _people() as people:
        infos = _run(lambda: people.user_infos(local_operator()))
    table = Table()
    for column in ("user", "roles", "groups", "state", "source", "last synced"):
        table.add_column(column)
    for info in infos:
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
    with _people() as people:
        _run(lambda: people.set_user_disabled(local_operator(), name, True))
    console.print(f"disabled {name}")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again."""
    with _people() as people:
        _run(lambda: people.set_user_disabled(local_operator(), name, False))
    console.print(f"enabled {name}")


@users_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a user: sessions end, API keys stop working, saved conversations are deleted now."""
    if not yes:
        typer.confirm(f"delete {name} and every conversation of theirs?", abort=True)
    with _people() as people:
        count = _run(lambda: people.delete_user(local_operator(), name))
    console.print(f"deleted {name} and {count} saved conversations")


@users_app.command("unlock")
def unlock(name: Annotated[str, typer.Argument()]) -> None:
    """Clear a lockout after too many failed logins."""
    with _people() as people:
        _run(lambda: people.unlock_user(local_operator(), name))
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
    secret = _ask_password(password)
    with _people() as people:
        _run(lambda: people.reset_password(local_operator(), name, secret, must_change=must_change))
    console.print(f"password of {name} set")


@users_app.command("add-to-group")
def add_to_group(
    name: Annotated[str, typer.Argument()], group: Annotated[str, typer.Argument()]
) -> None:
    """Let a user read documents of GROUP (applies to the next query)."""
    with _people() as people:
        user = _run(lambda: people.add_user_to_group(local_operator(), name, group))
    console.print(f"{name} is now in {', '.join(user.groups)}")


@users_app.command("remove-from-group")
def remove_from_group(
    name: Annotated[str, typer.Argument()], group: Annotated[str, typer.Argument()]
) -> None:
    """Stop a user reading documents of GROUP (applies to the next query)."""
    with _people() as people:
        user = _run(lambda: people.remove_user_from_group(local_operator(), name, group))
    console.print(f"{name} is now in {', '.join(user.groups) or 'no groups'}")


@users_app.command("set-roles")
def set_roles(
    name: Annotated[str, typer.Argument()],
    roles: Annotated[str, typer.Argument(help="comma-separated: employee, admin, auditor")],
) -> None:
    """Replace a user's roles."""
    with _people() as people:
        user = _run(lambda: people.set_user_roles(local_operator(), name, _split(roles)))
    console.print(f"{name} now has roles {', '.join(sorted(user.roles))}")


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
    with _people() as people:
        results = _run(lambda: people.sync_directory(local_operator()))
    for name, outcome in results:
        console.print(f"{name}: {outcome}", highlight=False)
    console.print(f"{len(results)} directory accounts read")


@users_app.command("extra-groups")
def extra_groups(
    name: Annotated[str, typer.Argument()],
    groups: Annotated[str, typer.Argument(help="comma-separated; empty ('') removes every extra")],
) -> None:
    """A directory account's local override: groups on top of the directory's (audited)."""
    with _people() as people:
        user = _run(lambda: people.set_user_extra_groups(local_operator(), name, _split(groups)))
    console.print(f"{name} is now in {', '.join(user.groups) or 'no groups'}")


@acl_app.command("set")
def acl_set(
    target: Annotated[str, typer.Argument(help="an ingested file or folder, or a document id")],
    groups: Annotated[str, typer.Option(help="comma-separated ACL groups that may read it")],
) -> None:
    """Change who may read TARGET without re-embedding; applies to the next query."""
    from app.service import DocumentNotFound, KuraService

    chosen = _run(lambda: parse_groups(groups))
    where = str(Path(target).resolve()) if "/" in target else target  # the server has its own cwd
    if remote := cli_remote.server():
        try:
            changed = remote.put("/api/v1/acl", {"target": where, "groups": list(chosen)})["files_changed"]
        except ServerError as exc:
            err.print(f"[red]{escape(exc.reason)}[/red]", highlight=False)
            raise typer.Exit(2) from None
        finally:
            remote.close()
    else:
        service = KuraService(KuraSettings())
        try:
            changed = service.set_acl(local_operator(), where, chosen)
        except (DocumentNotFound, ValueError) as exc:
            err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
            raise typer.Exit(2) from None
        finally:
            service.close()
    console.print(f"{changed} files now readable by {groups or 'everyone'}")
