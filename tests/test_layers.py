"""The tree is the architecture: the import-linter contracts in pyproject.toml (layers from the
doors down to base/, the UI and CLI doors kept apart, no cycles inside a package) hold, and a
request rule lives in the service, not in a door."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "3 kept, 0 broken" in run.stdout, run.stdout[-2000:]


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    """The contract is not vacuous: a copy of the tree where the engine imports the service fails it."""
    import shutil

    for top in ("app", "ingest", "retrieval", "models", "base", "benchmarks"):
        shutil.copytree(REPO / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "models" / "gguf.py").open("a") as fh:
        fh.write("\nfrom app.service import KuraService  # noqa: E402,F401\n")
    run = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert run.returncode != 0
    assert "models.gguf -> app.service" in run.stdout
