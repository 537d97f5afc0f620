"""Benchmarks: each module prints numbers and ratios; none of them is a test. Run with
`kura bench NAME [ARGS]` (NAME is a module here, e.g. `kura bench ingest --help`)."""
