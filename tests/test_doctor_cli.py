"""`kura doctor` and `kura models ...` on this machine: every line OK/WARN/FAIL, FAIL exits 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from app.doors.cli.models import doctor, models_app, run_checks


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    app.command("doctor")(doctor)
    return app


def test_doctor_passes_on_a_fresh_install_and_reports_cpu_and_ocr(data_dir: Path) -> None:
    result = CliRunner().invoke(_cli(), ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for what in (
        "python",
        "llama.cpp",
        "GPU",
        "model smollm2",
        "LLM",
        "store",
        "disk",
        "tesseract",
        "network",
    ):
        assert f" {what}" in result.output, what
    assert "no outbound connection needed" in result.output


def test_doctor_lists_configured_servers_as_the_only_outbound_connections(settings) -> None:
    settings.llm_url = "http://gpu-box:8080"
    network = [c for c in run_checks(settings) if c.what == "network"][0]
    assert "KURA_LLM_URL=http://gpu-box:8080" in network.detail


def test_doctor_fails_when_the_active_llm_was_corrupted(data_dir: Path, tmp_path: Path) -> None:
    from models.registry import packaged_llm_path

    model = tmp_path / "site.gguf"
    shutil.copy2(packaged_llm_path(), model)
    runner = CliRunner()
    assert runner.invoke(_cli(), ["models", "add", str(model), "--name", "site"]).exit_code == 0
    assert runner.invoke(_cli(), ["models", "use", "site"]).exit_code == 0
    listed = runner.invoke(_cli(), ["models", "list"], env={"COLUMNS": "250"})
    assert "site" in listed.output and "*" in listed.output
    with model.open("r+b") as handle:
        handle.truncate(model.stat().st_size - 4096)
    verify = runner.invoke(_cli(), ["models", "verify", "site"], env={"COLUMNS": "200"})
    assert verify.exit_code == 1 and "truncated" in verify.output
    result = runner.invoke(_cli(), ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "FAIL model site" in " ".join(result.output.split())


def test_models_add_rejects_a_file_that_is_not_a_model(data_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model")
    result = CliRunner().invoke(_cli(), ["models", "add", str(bogus)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "ModelInvalid" in result.output
