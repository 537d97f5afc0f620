"""`kura bench NAME [ARGS...]`: run benchmarks/NAME.py's `main(argv)`; it prints its own numbers."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parent.parent


def available() -> list[str]:
    import benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def bench(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="benchmark to run (a module in benchmarks/)"),
) -> None:
    """Run a benchmark and print its numbers (extra arguments go to the benchmark)."""
    sys.path.insert(0, str(REPO))
    if name not in available():
        raise typer.BadParameter(f"no benchmark {name!r}; available: {', '.join(available()) or 'none'}")
    module = importlib.import_module(f"benchmarks.{name}")
    raise typer.Exit(module.main(list(ctx.args)) or 0)
