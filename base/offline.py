"""Switch off every dependency's telemetry and hub access before those dependencies load.

Imported first by every entry point (CLI, UI, tests): the variables only work when they are
set before `unstructured`, `huggingface_hub`, `streamlit` or `fastembed` are imported.
"""

import os

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",  # unstructured pings home on import without it
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    # llama.cpp's OpenMP threads busy-wait by default and collapse on a shared CPU.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def enforce_offline() -> None:
    """Set the offline variables (an operator's explicit value wins, except the privacy ones)."""
    for key, value in OFFLINE_ENV.items():
        if key in ("DO_NOT_TRACK", "HF_HUB_OFFLINE", "STREAMLIT_BROWSER_GATHER_USAGE_STATS"):
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)


enforce_offline()


# Environment variables through which a dependency could be told to reach a host.
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_URL_ENV: tuple[str, ...] = ("HF_ENDPOINT", *_PROXIES, *(name.lower() for name in _PROXIES))


def outbound_urls(settings: object) -> list[tuple[str, str, str]]:
    """Every outbound URL kura is configured to use, as (setting, url, where) with `where`
    one of loopback | private network | PUBLIC: `kura doctor` reports them, and a PUBLIC one
    means documents or questions could leave the site. Secrets in URLs are not returned."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    found = [
        (f"KURA_{name.upper()}", str(value))
        for name in ("qdrant_url", "llm_url", "ldap_url", "oidc_issuer")
        if (value := getattr(settings, name, None))
    ]
    found += [(name, os.environ[name]) for name in _URL_ENV if os.environ.get(name)]
    result = []
    for name, url in found:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = parts.hostname or ""
        try:
            # Resolved by /etc/hosts or the site's own resolver; the URL itself is not contacted.
            address = ipaddress.ip_address(socket.gethostbyname(host)) if host else None
        except (OSError, ValueError):
            address = None
        if address is None:
            where = "unresolved"
        elif address.is_loopback:
            where = "loopback"
        elif address.is_global:
            where = "PUBLIC"
        else:
            where = "private network"
        shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
        result.append((name, shown, where))
    return result
