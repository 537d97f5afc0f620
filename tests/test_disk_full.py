"""A full disk: kura refuses to start an ingest it cannot finish, says what to do, and a crash
when the disk fills mid-ingest loses nothing — after freeing space the same command finishes.

The disk is real: a small tmpfs mounted in a private mount namespace (`unshare -m`, root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _can_mount_tmpfs() -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not _can_mount_tmpfs(), reason="needs root and mount namespaces (unshare -m)"
)

# One shell script, one mount namespace: each step prints a marker line and the kura output.
_SCRIPT = r"""
set -u
disk="$1"; docs="$2"; kura="$3"
mount -t tmpfs -o size=3m tmpfs "$disk"
export KURA_DATA_DIR="$disk/kura" KURA_EMBEDDER_BACKEND=torch
echo "== refuse"; "$kura" ingest "$docs" --groups everyone 2>&1; echo "rc=$?"
echo "== fill"; KURA_MIN_FREE_MB=0 "$kura" ingest "$docs" --groups everyone >/dev/null 2>&1; echo "rc=$?"
mount -o remount,size=600m "$disk"
echo "== resume"; "$kura" ingest "$docs" --groups everyone 2>&1; echo "rc=$?"
echo "== docs"; "$kura" docs 2>&1
echo "== search"; "$kura" search "minimum equipment list" --limit 3 2>&1
"""


def _steps(output: str) -> dict[str, str]:
    steps: dict[str, str] = {}
    name = ""
    for line in output.splitlines():
        if line.startswith("== "):
            name = line[3:].strip()
            steps[name] = ""
        elif name:
            steps[name] += line + "\n"
    return steps


def test_full_disk_is_refused_with_advice_and_a_mid_ingest_crash_loses_nothing(tmp_path: Path, copy_docs) -> None:
    docs = copy_docs("en/federal_register_2020-17221.pdf", "en/scotus_transcript_p1.pdf")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    kura = str(Path(sys.executable).parent / "kura")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env["COLUMNS"] = "200"  # keep rich from wrapping the messages
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", _SCRIPT, "sh", str(disk), str(docs), kura],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env=env,
    )
    steps = _steps(result.stdout)

    # 1. A 3 MB disk: refused before anything is written, with the fix in the message.
    assert "rc=2" in steps["refuse"], steps["refuse"]
    assert "free space" in steps["refuse"] and "KURA_DATA_DIR" in steps["refuse"], steps["refuse"]

    # 2. Forced past the check, the disk fills mid-ingest and kura stops (a crash, as kill -9).
    assert "rc=0" not in steps["fill"], steps["fill"]

    # 3. After freeing space, the same command finishes and both documents are searchable.
    assert "rc=0" in steps["resume"], steps["resume"] + result.stderr
    assert "federal_register_2020-17221.pdf" in steps["docs"] and "scotus_transcript_p1.pdf" in steps["docs"]
    assert "federal_register_2020-17221.pdf" in steps["search"], steps["search"]
