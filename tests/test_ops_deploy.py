"""The deployment files a site runs: docker-compose.yml (parsed by docker-compose itself),
the Dockerfile's build steps, Prometheus and the Grafana dashboard. Docker cannot run here;
these check everything that can be checked without an engine."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

ENV = {"QDRANT_API_KEY": "test-key-not-secret", "GRAFANA_ADMIN_PASSWORD": "test-password"}


def compose_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    full_env = {k: v for k, v in os.environ.items() if k not in ENV}
    full_env.update(env if env is not None else ENV)
    return subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), *args, "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    done = compose_config("--profile", "gpu", "--profile", "monitoring")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_file_is_valid_and_runs_qdrant_ui_and_an_ingestion_worker(compose):
    services = compose["services"]
    assert {"qdrant", "kura", "ingest-worker", "kura-gpu", "prometheus", "grafana"} <= set(services)
    for name in ("kura", "ingest-worker", "kura-gpu"):
        env = services[name]["environment"]
        assert env["KURA_QDRANT_URL"] == "http://qdrant:6333"
        assert (
            env["KURA_QDRANT_API_KEY"]
            == services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"]
        )
        assert any(
            v["target"] == "/data" and v["type"] == "volume" for v in _volumes(services[name])
        )
    worker = " ".join(services["ingest-worker"]["command"])
    assert "kura folders add /docs" in worker and "kura jobs work" in worker  # a watched folder
    assert services["kura"]["command"] == ["kura", "serve"]


def _volumes(service: dict) -> list[dict]:
    """Volumes as {type, source, target}: docker-compose 1.x prints 'source:target:mode'."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append(v)
            continue
        source, target = str(v).split(":")[:2]
        out.append(
            {
                "type": "bind" if source.startswith(("/", ".")) else "volume",
                "source": source,
                "target": target,
            }
        )
    return out


def test_qdrant_image_is_pinned_and_its_storage_persists_in_a_named_volume(compose):
    qdrant = compose["services"]["qdrant"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", qdrant["image"])
    targets = {v["target"]: v for v in _volumes(qdrant)}
    assert targets["/qdrant/storage"]["type"] == "volume"
    assert qdrant["environment"]["QDRANT__TELEMETRY_DISABLED"] == "true"
    for name in ("prometheus", "grafana"):
        assert not compose["services"][name]["image"].endswith(":latest")


def test_gpu_profile_builds_llama_cpp_with_cuda_and_reserves_nvidia_devices(compose):
    gpu = compose["services"]["kura-gpu"]
    assert gpu["build"]["args"]["LLAMA_CMAKE_ARGS"] == "-DGGML_CUDA=on"
    assert gpu["build"]["args"]["BASE_IMAGE"].startswith("nvidia/cuda:")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "gpu" in gpu["profiles"] and "kura-gpu" not in compose_services_without_profiles()


def compose_services_without_profiles() -> list[str]:
    done = compose_config("--services")
    return done.stdout.split()


def test_compose_refuses_to_start_without_a_qdrant_api_key():
    done = compose_config(env={"GRAFANA_ADMIN_PASSWORD": "x"})
    assert done.returncode != 0 and "QDRANT_API_KEY" in done.stderr


def test_files_mounted_by_compose_exist(compose):
    mounted = [
        volume["source"]
        for service in compose["services"].values()
        for volume in _volumes(service)
        if volume["type"] == "bind" and volume["source"].startswith(str(REPO / "deploy"))
    ]
    assert len(mounted) == 3  # prometheus.yml, grafana provisioning, the dashboard
    for source in mounted:
        assert os.path.exists(source), source


def dockerfile_steps() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            steps.append((instruction.upper(), rest.strip()))
    return steps


def test_every_dockerfile_copy_source_exists_and_is_not_docker_ignored():
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip()
    }
    copies = [rest for instruction, rest in dockerfile_steps() if instruction == "COPY"]
    assert copies
    for rest in copies:
        *sources, _dest = shlex.split(rest)
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: missing from the build context"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_dockerfile_runs_the_setup_script_and_starts_a_real_kura_command():
    from typer.main import get_command

    from app.doors.cli.main import app

    steps = dockerfile_steps()
    runs = " ".join(rest for instruction, rest in steps if instruction == "RUN")
    for script in re.findall(r"scripts/[\w./-]+\.sh", runs):
        path = REPO / script
        assert path.is_file(), script
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0, (
            f"{script}: syntax"
        )
        copied = " ".join(rest for instruction, rest in steps if instruction == "COPY")
        assert "scripts/" in copied
    assert "FROM ${BASE_IMAGE}" in [
        f"FROM {rest}" for instruction, rest in steps if instruction == "FROM"
    ]
    cmd = json.loads(next(rest for instruction, rest in steps if instruction == "CMD"))
    assert cmd[0] == "kura" and cmd[1] in get_command(app).commands  # type: ignore[attr-defined]


def test_grafana_dashboard_only_charts_metrics_kura_exports():
    from prometheus_client import REGISTRY

    import app.platform.metrics  # noqa: F401  (registers kura's metrics)

    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_count", "_sum"]}
    exported = {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, [""])
    }
    dashboard = json.loads((REPO / "deploy" / "grafana" / "kura-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bkura_[a-z_]+", target["expr"])
    }
    histograms = {n[: -len("_bucket")] for n in exported if n.endswith("_bucket")}
    assert len(used) >= 12
    for name in used:
        assert name in exported or name in histograms, (
            f"dashboard uses {name}, which kura does not export"
        )
    assert {
        "kura_queries_total",
        "kura_refusals_total",
        "kura_answer_first_token_seconds_bucket",
    } <= used


def test_prometheus_scrapes_the_ports_compose_gives_kura(compose):
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for t in group["targets"]
    }
    for name in ("kura", "ingest-worker", "kura-gpu"):
        port = compose["services"][name]["environment"]["KURA_METRICS_PORT"]
        assert f"{name}:{port}" in targets
