"""kura's application, in layers that import only downward:

    doors/      the browser (ui/), HTTP (http/) and shell (cli/) doors: they translate, nothing more
    service/    one module per use case (role check + audit entry) and the composition root (parts.py)
    identity/   accounts, API keys, the company directory, OIDC, the local operator's token
    audit/      the hash-chained audit log and SIEM forwarding
    platform/   settings, logs, metrics, private files

Below app/ sits the engine (ingest/, retrieval/, models/) and below that base/. The layers
contract in pyproject.toml ([tool.importlinter]) is checked by tests/test_layers.py."""
