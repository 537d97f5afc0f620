"""The `kura` command line (main.py) and its command groups; remote/ reaches a running server."""
