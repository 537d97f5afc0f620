"""`kura keys create|list|revoke`: personal API keys for the HTTP API and the OpenAI-compatible
endpoint. At the server's shell the operator acts as admin, so `create` names the account the
key acts for (`--user`), e.g. a chat bot's service account; the key carries only its rights.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.identity.accounts import UnknownUser
from app.identity.keys import SCOPES, ApiKeyNotFound
from app.identity.users import AccessDenied, local_operator
from app.platform.settings import KuraSettings

keys_app = typer.Typer(help="Personal API keys (HTTP API, OpenAI-compatible endpoint).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _service():  # noqa: ANN202
    from app.service import KuraService

    return KuraService(KuraSettings())


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "-"


@keys_app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", help="the account the key acts for (its roles and groups)")],
    scope: Annotated[str, typer.Option(help=f"one of {', '.join(SCOPES)}")] = "read",
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
    expires_days: Annotated[float | None, typer.Option(help="days until the key stops working")] = None,
) -> None:
    """Create a key and print it once (only its hash is stored: copy it now)."""
    service = _service()
    try:
        record, key = service.create_api_key(local_operator(), scope, name, expires_days, owner=user)
    except (UnknownUser, AccessDenied, ValueError) as exc:
        err.print(f"[red]{str(exc).strip(chr(39))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        service.close()
    console.print(f"key id {record.id} for {record.owner}, scope {record.scope}, expires {_when(record.expires)}")
    console.print("the key (shown once; send it as 'Authorization: Bearer <key>'):")
    print(key)


@keys_app.command("list")
def list_keys() -> None:
    """Every key: id, owner, scope, expiry, state (never the key itself)."""
    service = _service()
    try:
        records = service.list_api_keys(local_operator(), everyone=True)
    finally:
        service.close()
    table = Table()
    for column in ("id", "owner", "name", "scope", "created", "expires", "last used", "state"):
        table.add_column(column, no_wrap=column == "id")
    now = time.time()
    for r in records:
        state = "revoked" if r.revoked else ("expired" if not r.active(now) else "active")
        table.add_row(
            r.id, r.owner, r.name, r.scope, _when(r.created), _when(r.expires), _when(r.last_used), state
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id from `kura keys list`")]) -> None:
    """Revoke a key now: the next call with it is refused."""
    service = _service()
    try:
        service.revoke_api_key(local_operator(), key_id)
    except ApiKeyNotFound as exc:
        err.print(f"[red]{str(exc).strip(chr(39))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        service.close()
    console.print(f"key {key_id} revoked")
