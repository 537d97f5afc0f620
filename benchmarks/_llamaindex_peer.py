"""The peer pipeline `kura bench ingest --compare-llamaindex` runs: LlamaIndex 0.14 defaults +
Qdrant (local, on disk) + all-MiniLM-L6-v2 in torch, from the packaged model folder.

Run as a child process (one per timed run): `python -m benchmarks._llamaindex_peer FOLDER DATA_DIR`.
Prints one JSON line: load_s (imports + model), pipeline_s (read, split, embed, upsert), nodes.

LlamaIndex's defaults throughout, its splitter's tokenizer included: tiktoken's cl100k_base,
whose vocabulary llama-index-core ships (`llama_index/core/_static/tiktoken_cache`), so it
needs no download. (An earlier version counted with MiniLM's tokenizer instead, which is
slower and cuts more, smaller nodes: it made the peer ~2x slower than LlamaIndex as shipped.)
Needs the `bench` extra: `scripts/setup.sh --bench`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def run(folder: Path, data_dir: Path) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    started = time.monotonic()
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from models.registry import packaged_embedder_path

    model = packaged_embedder_path()
    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=str(model), device="cpu")
    client = QdrantClient(path=str(data_dir / "qdrant"))
    store = QdrantVectorStore(client=client, collection_name="bench")
    loaded = time.monotonic()
    documents = SimpleDirectoryReader(str(folder), recursive=True).load_data()
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    done = time.monotonic()
    nodes = client.count("bench").count
    del index
    client.close()
    return {
        "load_s": round(loaded - started, 2),
        "pipeline_s": round(done - loaded, 2),
        "documents": len(documents),
        "nodes": nodes,
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]))))
