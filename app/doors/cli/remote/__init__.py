"""The `kura` commands that go through a running `kura serve` instead of opening the store:
the HTTP client (client.py), the remote use cases (usecases.py) and the command helpers (commands.py)."""
