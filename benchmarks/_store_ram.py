"""The memory a store takes in a process that only serves it: `python -m benchmarks._store_ram STORE
DIM GROUPS VECTORS.npz` opens the store, runs hybrid searches as three readers, and prints one
JSON line: the resident memory it added, anonymous and file-backed (pages of the store's files
that the process maps and has touched), in GiB.

The benchmark's own process cannot tell: it searched the store before the index existed, and the
allocator keeps what that freed; a fresh process shows what serving the indexed store costs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _resident() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile"):
                out[key] = int(line.split()[1]) / 2**20
    return out


def main(argv: list[str]) -> int:
    from benchmarks._synthetic_store import TextLikeVectors
    from retrieval.sparse import SparseEncoder
    from retrieval.store import ALL_GROUPS, EdgeStore

    store_dir, dim, group_count, model = Path(argv[0]), int(argv[1]), int(argv[2]), Path(argv[3])
    saved = np.load(model)
    vectors = TextLikeVectors(dim, "text", *(saved[k] for k in ("centres", "weights", "axes", "scales")))
    dense = vectors.sample(np.random.default_rng(11), 60).tolist()
    encoder = SparseEncoder()
    words = [encoder.encode_query(q) for q in ("annual paid leave days", "boundary layer flow", "trustee plan")]
    groups = [f"group-{g:02d}" for g in range(group_count)]
    before = _resident()
    store = EdgeStore(store_dir, dim)
    opened = _resident()
    for i, v in enumerate(dense):
        for reader in (groups[:3], groups, ALL_GROUPS):
            store.search(reader, v, words[i % len(words)], 8)
    searched = _resident()
    store.close()
    print(
        json.dumps(
            {
                "opened": {k: round(opened[k] - before[k], 2) for k in before},
                "after_searches": {k: round(searched[k] - before[k], 2) for k in before},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
