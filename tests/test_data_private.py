"""The data directory and every backup are private to the account kura runs as.

Checked with a real second account: `runuser -u nobody -- cat FILE` for every file kura wrote.
The folders above the data directory are opened up on purpose (0755, as /srv or /var/lib
are), so only kura's own modes stand between `nobody` and the files; a control file outside
the data directory shows that `nobody` can read what kura does not protect.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.platform.privacy import exposed

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runuser"),
    reason="runs `runuser -u nobody` (needs root, util-linux)",
)


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A folder every account may enter, like /srv: pytest's own tmp folders are 0700."""
    folder = Path(tempfile.mkdtemp(prefix="kura-private-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


_READ_EACH = 'for f; do if [ -d "$f" ]; then ls "$f"; else cat "$f"; fi >/dev/null 2>&1 && echo "$f"; done'


def readable_by_nobody(paths: list[Path]) -> list[Path]:
    """The paths the account `nobody` can list (a folder) or read (a file), in one runuser."""
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "sh", "-c", _READ_EACH, "sh", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    return [Path(line) for line in result.stdout.splitlines()]


def nobody_can_read(path: Path) -> bool:
    return readable_by_nobody([path]) == [path]


def every_path(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


def assert_private_to_its_owner(root: Path) -> None:
    """Folders 0700 and files 0600, and `nobody` reads nothing: not through kura's folders,
    and not even once someone opens the folders (each file guards itself too)."""
    paths = every_path(root)
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
    assert not nobody_can_read(root)
    folders = [p for p in paths if p.is_dir()]
    for folder in folders:
        folder.chmod(0o711)  # a careless `chmod` on the folders alone
    try:
        assert readable_by_nobody([p for p in paths if p.is_file()]) == []
    finally:
        for folder in folders:
            folder.chmod(0o700)


def test_nobody_can_read_what_the_cli_writes_and_looser_modes_are_fixed_at_start(
    open_parent: Path,
) -> None:
    data = open_parent / "data"
    data.mkdir()
    data.chmod(0o755)  # explicit: an earlier test in this process may have set kura's umask
    old = data / "audit.jsonl.old"  # left by an older version, world-readable
    old.write_text("every question ever asked\n")
    old.chmod(0o644)
    control = open_parent / "control.txt"
    control.write_text("not kura's\n")
    control.chmod(0o644)
    assert nobody_can_read(control), "the control must be readable, or this test proves nothing"
    assert nobody_can_read(old) and exposed(data)

    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env["KURA_DATA_DIR"] = str(data)
    done = subprocess.run(  # the real `kura` entry point, started with a loose umask
        [sys.executable, "-c", "import os; os.umask(0o022); from app.doors.cli.main import main; main()",
         "audit", "checkpoint"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    assert {p.name for p in every_path(data)} >= {"audit.jsonl", "audit.key", "audit.head", "logs"}
    assert exposed(data) == []
    assert_private_to_its_owner(data)


def test_doctor_fails_on_a_data_dir_other_accounts_can_read(settings, data_dir: Path) -> None:
    from app.doors.cli.models import _data_dir_private, run_checks

    settings.ensure_dirs()
    (data_dir / "manifest.sqlite3").write_bytes(b"")
    assert _data_dir_private(settings).status == "OK"
    (data_dir / "manifest.sqlite3").chmod(0o644)
    check = {c.what: c for c in run_checks(settings)}["data privacy"]  # as `kura doctor` runs it
    assert check.status == "FAIL" and "manifest.sqlite3" in check.detail and "chmod" in check.fix
    settings.ensure_dirs()  # the next start tightens it
    assert _data_dir_private(settings).status == "OK"


def test_nobody_can_read_a_backup(service, open_parent: Path, tmp_path: Path) -> None:
    from app.identity.users import local_operator

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "salaries.md").write_text("# Salaries\n\nThe CEO earns 1,000,000 a year.\n")
    service.ingest(local_operator(), docs, ["hr"])
    dest = open_parent / "kura-1"
    before = os.umask(0o022)  # even from a process with a loose umask
    try:
        service.backup(local_operator(), dest)
    finally:
        os.umask(before)
    assert len([p for p in every_path(dest) if p.is_file()]) >= 5 and exposed(dest) == []
    assert_private_to_its_owner(dest)
