"""A fresh machine installs everything kura needs from the package registries by name and
version, and every program the code or the tests run is installed by scripts/setup.sh."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from tests.conftest import REPO

SETUP = REPO / "scripts" / "setup.sh"
CODE_FOLDERS = ("app", "ingest", "retrieval", "models", "benchmarks", "tests")
# Programs kura may call but never installs: nvidia-smi comes with a site's GPU driver, and the
# code that calls it checks shutil.which first (GPU support is optional).
SITE_PROVIDED = {"nvidia-smi"}
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9.!+_-]+$")
_SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
_BIN_PATH = re.compile(r"^/usr/s?bin/([A-Za-z0-9._+-]+)$")


def not_a_registry_pin(requirement: str) -> bool:
    """True for anything but `name==version` (optionally with extras): a `name @ file://...`
    wheel, a path, a URL, an editable or an unpinned range would not install on a fresh machine."""
    return _PIN.match(requirement.strip()) is None


def pyproject_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        found += extra
    return found


def constraint_lines() -> list[str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_pin_check_refuses_local_wheels_paths_and_urls() -> None:
    # The shapes that broke the first fresh install, and the ones that would break the next.
    for bad in (
        "unstructured_inference @ file:///tmp/dl/unstructured_inference-1.6.14-py3-none-any.whl",
        "kura @ file:///work/main",
        "./wheels/foo-1.0-py3-none-any.whl",
        "/tmp/foo.whl",
        "-e .",
        "foo @ https://example.org/foo-1.0.tar.gz",
        "--find-links /tmp/wheels",
        "torch>=2",
        "requests",
    ):
        assert not_a_registry_pin(bad), bad
    for good in ("torch==2.13.0", "unstructured[docx,pptx]==0.27.32", "pdfminer.six==20260107"):
        assert not not_a_registry_pin(good), good


def test_every_install_source_is_a_registry_package_pinned_by_name_and_version() -> None:
    requirements = pyproject_requirements() + constraint_lines()
    assert len(requirements) > 50, "constraints.txt must pin the whole resolved tree"
    bad = [r for r in requirements if not_a_registry_pin(r)]
    assert not bad, f"not installable on a fresh machine (pin them as name==version): {bad}"


def test_freeze_script_cannot_write_a_local_path() -> None:
    script = (REPO / "scripts" / "freeze.sh").read_text()
    assert "pip list --format=freeze" in script, "pip freeze writes `name @ file://` for local wheels"
    assert "not registry pins" in script, "freeze.sh must stop on a pin that is not name==version"


def setup_tools(table: str) -> dict[str, str]:
    """The `program package` pairs of one array (RUNTIME_TOOLS or TEST_TOOLS) in setup.sh."""
    body = re.search(rf"^{table}=\((.*?)^\)", SETUP.read_text(), re.S | re.M)
    assert body, f"scripts/setup.sh has no {table}=( ... ) table"
    return dict(re.findall(r'^\s*"([^"\s]+) ([^"\s]+)"', body.group(1), re.M))


def programs_called() -> dict[str, set[str]]:
    """Program name -> files that run it: the first word of a literal subprocess argument list,
    shutil.which("x"), and literal /usr/bin/x paths."""
    found: dict[str, set[str]] = {}
    for folder in CODE_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                name = None
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    first = node.args[0] if node.args else None
                    if called == "which" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                        name = first.value
                    elif (
                        called in _SUBPROCESS_CALLS
                        and isinstance(first, ast.List | ast.Tuple)
                        and first.elts
                        and isinstance(first.elts[0], ast.Constant)
                        and isinstance(first.elts[0].value, str)
                    ):
                        name = first.elts[0].value
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    match = _BIN_PATH.match(node.value)
                    name = match.group(1) if match else None
                if name:
                    found.setdefault(Path(name).name, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_program_the_code_or_tests_run_is_installed_by_setup() -> None:
    listed = setup_tools("RUNTIME_TOOLS") | setup_tools("TEST_TOOLS")
    called = programs_called()
    # The scan itself must see the programs we know are called, or it proves nothing.
    assert {"tesseract", "img2pdf", "qpdf"} <= set(called), sorted(called)
    unlisted = {name: sorted(files) for name, files in called.items() if name not in set(listed) | SITE_PROVIDED}
    assert not unlisted, f"programs run but not installed by scripts/setup.sh (add 'program package'): {unlisted}"


def _owning_package(program: str) -> str | None:
    path = shutil.which(program)
    if path is None or shutil.which("dpkg") is None:
        return None
    real = Path(path).resolve()
    # usr-merged Debian registers /bin/x or /sbin/x for what PATH finds as /usr/bin/x.
    for candidate in {str(real), str(path), str(real).removeprefix("/usr"), str(path).removeprefix("/usr")}:
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":")[0].strip()
    return None


def test_each_listed_program_is_present_and_comes_from_the_package_named() -> None:
    for program, package in (setup_tools("RUNTIME_TOOLS") | setup_tools("TEST_TOOLS")).items():
        assert shutil.which(program), f"{program} is not on PATH; scripts/setup.sh --test installs {package}"
        owner = _owning_package(program)
        if owner is not None and not owner.startswith("diversion"):
            assert owner == package or owner.startswith(package + ","), f"{program} comes from {owner}, not {package}"
