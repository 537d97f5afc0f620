"""Embedder batches are cut by token length: every text once, short ones many to a batch."""

from __future__ import annotations

import pytest

from models.embed_batches import length_batches


def test_every_text_is_in_exactly_one_batch_and_no_batch_pads_past_the_budget() -> None:
    lengths = [256, 12, 40, 256, 7, 130, 33, 256, 90, 12] * 7
    batches = length_batches(lengths, token_budget=1024, max_rows=16)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 1024 and len(batch) <= 16


def test_batches_go_shortest_first_so_a_batch_pads_only_to_near_its_own_length() -> None:
    lengths = [200, 10, 180, 12, 11, 190]
    batches = length_batches(lengths, token_budget=400)
    assert [[lengths[i] for i in b] for b in batches] == [[10, 11, 12], [180, 190], [200]]


def test_a_text_longer_than_the_budget_is_a_batch_of_its_own() -> None:
    assert length_batches([5000, 3], token_budget=100) == [[1], [0]]


def test_a_budget_of_zero_is_refused_with_the_bad_value_named() -> None:
    with pytest.raises(ValueError, match="0"):
        length_batches([1], token_budget=0)
