"""The CLI's way into a running `kura serve` on the same data directory: the server owns the
embedded store (one opener per path), so a command that would open it asks the server instead,
over loopback HTTP with the operator token the server wrote (app/identity/operator_token.py).

Usage:
    client = running_server(settings)     # None: no server, open the store as before
    if client: passages = client.post("/api/v1/search", {"query": "leave policy"})
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from app.identity import operator_token as server_token
from app.platform.settings import KuraSettings


class ServerError(RuntimeError):
    """The server answered with an error; the message is the server's (it says what to do).
    `reason` is the server's message alone, `status` the HTTP status."""

    def __init__(self, text: str, reason: str = "", status: int = 0) -> None:
        super().__init__(text)
        self.reason, self.status = reason or text, status


class ServerClient:
    def __init__(self, info: server_token.ServerInfo) -> None:
        self.url = info.url
        self.http = httpx.Client(
            base_url=info.url,
            headers={"Authorization": f"Bearer {info.token}"},
            timeout=httpx.Timeout(600, connect=5),
        )

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ServerError(f"the kura server at {self.url} refused: {message}", message, response.status_code)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.http.get(path, params=params)).json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.http.post(path, json=body)).json()

    def post_body(self, path: str, content: bytes) -> Any:
        """A POST whose body is a file as it is (an import), not a JSON object built here."""
        return self._check(self.http.post(path, content=content, headers={"Content-Type": "application/json"})).json()

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.http.put(path, json=body)).json()

    def delete(self, path: str) -> Any:
        return self._check(self.http.delete(path)).json()

    def download(self, path: str, **params: Any) -> httpx.Response:
        """A GET whose body is a file (an export): the whole response, checked."""
        return self._check(self.http.get(path, params=params))

    def ask_events(
        self, question: str, as_admin: bool = True, conversation_id: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs of a streamed answer: evidence, answer, citations, done."""
        body = {"question": question, "stream": True, "as_admin": as_admin, "conversation_id": conversation_id}
        with self.http.stream("POST", "/api/v1/ask", json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            name = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    yield name, json.loads(line[6:])

    def close(self) -> None:
        self.http.close()


def running_server(settings: KuraSettings, wait_s: float = 10.0) -> ServerClient | None:
    """A client for this data directory's running server, or None when none runs. A server that
    is still starting gets `wait_s` to answer."""
    info = server_token.read(settings)
    if info is None:
        return None
    client = ServerClient(info)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.http.get("/api/v1/health", timeout=2).raise_for_status()
            return client
        except httpx.HTTPError:
            if time.monotonic() > deadline or server_token.read(settings) is None:
                client.close()
                return None
            time.sleep(0.3)
