"""One module per use case; app/service.py puts them together as KuraService."""
