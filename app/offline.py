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
