"""Cut a list of texts into embedder batches by token length, so that padding costs little.

A transformer batch is padded to its longest text, and every pad token costs as much compute
as a real one. Sorting by length and cutting batches at a token budget (rows x longest row)
keeps padding near zero, lets short texts (a title, a table row) go many to a batch and long
ones few, and bounds the memory onnxruntime keeps for its largest batch.

Usage:
    for batch in length_batches([len(ids) for ids in token_ids]):
        run([token_ids[i] for i in batch])  # `batch` holds indices into the input
"""

from __future__ import annotations

from collections.abc import Sequence

TOKEN_BUDGET = 4096  # padded tokens per batch: 16 rows of 256, or 128 rows of 32
MAX_ROWS = 128


def length_batches(
    lengths: Sequence[int], token_budget: int = TOKEN_BUDGET, max_rows: int = MAX_ROWS
) -> list[list[int]]:
    """Indices of `lengths`, shortest first, grouped so that rows x longest <= `token_budget`
    (a single text longer than the budget is a batch of its own)."""
    if token_budget < 1 or max_rows < 1:
        raise ValueError(f"token_budget and max_rows must be positive, not {token_budget}, {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted ascending: the text being added is the batch's longest.
        if current and ((len(current) + 1) * lengths[i] > token_budget or len(current) >= max_rows):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
