"""`kura users ...` (local accounts) and `kura acl set` (who may read ingested documents).

The operator at the server's shell acts as admin; every change lands in the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.accounts import Accounts, PasswordPolicyError, UnknownUser, UserExists
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
    return Accounts(settings.users_path, audit=AuditLog(settings.audit_path))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ask_password(password: str | None, confirm: bool = True) -> str:
    return password or typer.prompt("password", hide_input=True, confirmation_prompt=confirm)


def _run(action) -> None:  # noqa: ANN001  (a zero-argument callable)
    """Turn a user's mistake into one red line and exit code 2; nothing is half-changed."""
    try:
        action()
    except (ValueError, UnknownUser, UserExists, PasswordPolicyError) as exc:
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
    """List users with their roles, groups and state."""
    accounts = _accounts()
    table = Table()
    for column in ("user", "roles", "groups", "state"):
        table.add_column(column)
    for user in accounts.list():
        state = "disabled" if accounts.is_disabled(user.name) else "active"
        if accounts.needs_password_change(user.name):
            state += ", must change password"
        table.add_row(
            user.name, ", ".join(sorted(user.roles)), ", ".join(user.groups) or "-", state
        )
    console.print(table)


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
