"""Local models: finding and verifying them, the embedder, the reranker, the LLM and its prompts."""
