"""`kura bench NAME [ARGS...]`: run benchmarks/NAME.py in a process of its own; it prints its
own numbers. A separate process (`python -m benchmarks NAME`) times the benchmark without the
CLI's imports and threads, and keeps the benchmarks above every door in the import graph."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys

import typer


def available() -> list[str]:
    """The benchmark modules (benchmarks/*.py not starting with _), found without importing them."""
    spec = importlib.util.find_spec("benchmarks")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(
        m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_")
    )


def bench(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="benchmark to run (a module in benchmarks/)"),
) -> None:
    """Run a benchmark and print its numbers (extra arguments go to the benchmark)."""
    if name not in available():
        raise typer.BadParameter(f"no benchmark {name!r}; available: {', '.join(available()) or 'none'}")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "benchmarks", name, *ctx.args]))
