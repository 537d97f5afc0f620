"""Retrieval: the chunk store (Qdrant), sparse encoding, hybrid search with ACL filters inside
the query, reranking and context assembly. Never calls the LLM."""
