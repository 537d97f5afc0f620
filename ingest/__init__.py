"""Ingestion: files to chunks with metadata (parse, OCR, chunk), the manifest, folder sync."""
