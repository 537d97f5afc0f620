"""`python -m app.doors.cli ...` runs the `kura` command (the same as the installed `kura` script)."""

from app.doors.cli.main import main

main()
