"""`python -m benchmarks NAME [ARGS...]` (what `kura bench` runs): NAME's `main(argv)`."""

import importlib
import sys

if len(sys.argv) < 2:
    sys.exit("usage: python -m benchmarks NAME [ARGS...]  (kura bench NAME)")
sys.exit(importlib.import_module(f"benchmarks.{sys.argv[1]}").main(sys.argv[2:]) or 0)
