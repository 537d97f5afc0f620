"""The local operator's door into a running server. `kura serve` writes `server.json` into the
data directory (mode 0600: only the account that runs kura can read it) with the server's
loopback URL and a fresh random token; a `kura` command on the same data directory finds it,
and sends the token as its API key, acting as the local operator (app/identity/users.py). The token
lives as long as the server: a restart makes a new one, and stopping the server removes it.

Usage:
    token = write(settings, "http://127.0.0.1:8501")     # app/doors/http/server.py, at start
    info = read(settings)                                  # app/doors/cli/remote/client.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass

from app.platform.settings import KuraSettings

PREFIX = "kuraop_"
_current: str | None = None  # sha256 of this process's token, set by write()


@dataclass(frozen=True)
class ServerInfo:
    url: str
    token: str
    pid: int


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write(settings: KuraSettings, url: str) -> str:
    """Make this process's operator token and publish it with `url` for local commands."""
    global _current
    token = PREFIX + secrets.token_urlsafe(32)
    path = settings.server_token_path
    path.unlink(missing_ok=True)  # a fresh file, so the mode below is the one it gets
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, fh)
    _current = _sha(token)
    return token


def remove(settings: KuraSettings) -> None:
    """At shutdown: forget the token and remove the file if it is still this process's."""
    global _current
    info = read(settings, check_alive=False)
    if info is not None and info.pid == os.getpid():
        settings.server_token_path.unlink(missing_ok=True)
    _current = None


def is_operator_token(token: str) -> bool:
    return _current is not None and hmac.compare_digest(_current, _sha(token))


def read(settings: KuraSettings, check_alive: bool = True) -> ServerInfo | None:
    """The running server of this data directory, or None (no file, or its process is gone)."""
    try:
        data = json.loads(settings.server_token_path.read_text())
        info = ServerInfo(str(data["url"]), str(data["token"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive:
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another account's process
    return info
