"""A bad setting or config file never shows a traceback: every `kura` command prints one line
naming the setting, the bad value and what to do, and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

COMMANDS = (["docs"], ["search", "leave"], ["audit", "verify"], ["users", "list"], ["doctor"], ["serve"])


def kura(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    return {**env, "KURA_DATA_DIR": str(data_dir), **extra}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *must_name: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in must_name:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_bad_number_names_the_setting_and_value_for_every_command(tmp_path: Path, command: list[str]) -> None:
    result = kura(*command, env=clean_env(tmp_path / "d", KURA_MAX_FILE_MB="abc"))
    assert_one_line_error(result, "KURA_MAX_FILE_MB", "'abc'", "default: 200.0")


def test_a_bad_choice_says_what_is_allowed(tmp_path: Path) -> None:
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_UI_LANGUAGE="fr"))
    assert_one_line_error(result, "KURA_UI_LANGUAGE", "'fr'", "'en' or 'ja'")


def test_a_malformed_config_file_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "kura.yaml"
    config.write_text("chunk_tokens: 200\nui_language: [en\n")
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_CONFIG=str(config)))
    assert_one_line_error(result, str(config), "not valid YAML", "line", "kura.example.yaml")


def test_a_bad_value_inside_the_config_file_names_the_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "kura.yaml"
    config.write_text("search_top_k: many\n")
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_CONFIG=str(config)))
    assert_one_line_error(result, f"search_top_k in {config}", "'many'")


def test_a_config_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "kura.yaml"
    config.write_text("- just\n- a list\n")
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_CONFIG=str(config)))
    assert_one_line_error(result, str(config))


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_CONFIG=str(missing)))
    assert_one_line_error(result, "KURA_CONFIG", str(missing), "does not exist")


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = kura("docs", env=clean_env(blocker / "data"))
    assert_one_line_error(result, "KURA_DATA_DIR", str(blocker / "data"), "folder kura may create")


def test_good_settings_still_run_the_command(tmp_path: Path) -> None:
    # The same harness with valid settings succeeds, so the failures above are about the values.
    result = kura("docs", env=clean_env(tmp_path / "d", KURA_MAX_FILE_MB="50"))
    assert result.returncode == 0, result.stderr


def test_an_ingest_that_names_no_readers_is_refused_in_one_line_and_nothing_is_published(tmp_path: Path) -> None:
    """The readers rule is the use case's (app/service/rules.py): the shell gets it like the API
    and the browser, and `everyone` is published to only when it is named."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "memo.md").write_text("# Memo\n\nThe lobby opens at 7:00.\n")
    env = clean_env(tmp_path / "d")
    refused = kura("ingest", str(folder), env=env)
    assert_one_line_error(refused, "choose who may read", "everyone")
    assert "0 chunks" not in refused.stdout and "ingestion report" not in refused.stdout
    listed = kura("docs", env=env)
    assert listed.returncode == 0 and "memo.md" not in listed.stdout, listed.stdout + listed.stderr
