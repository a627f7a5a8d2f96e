"""The package installs (pyproject.toml) and its console commands run from anywhere.

One fresh virtual environment for the module: it sees the test environment's packages
(torch and the rest) through a .pth file, so only ours is installed, with
`pip install --no-deps --no-build-isolation` from a copy of the sources (a build
leaves build/ and *.egg-info behind; not in the checkout).  Every command then runs
from a folder outside the checkout, so what answers is the installed copy.
"""
from __future__ import annotations

import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import syncnet

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "syncnet-process-long-video": "process_long_video",
    "syncnet-video-utils": "video_utils",
    "syncnet-batch": "batch_process",
    "syncnet-pipeline": "run_pipeline",
    "syncnet-run": "run_syncnet",
    "syncnet-visualise": "run_visualise",
    "syncnet-weights": "weights",
    "syncnet-score-videos": "score_videos",
}


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}  # no PYTHONPATH, no VIRTUAL_ENV of ours
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("syncnet", "detectors"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pth", "*.model"))
    for name in ("tests", "testkit", "bench", "tools"):  # packages beside ours that must stay out
        (src / name).mkdir()
        (src / name / "__init__.py").write_text("")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", where], check=True, capture_output=True,
                                  text=True).stdout.strip())
    (purelib / "_outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch, pip, setuptools, ...
    outside = root / "elsewhere"
    outside.mkdir()
    proc = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                 "--no-index", str(src)], outside)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"venv": venv, "purelib": purelib, "outside": outside}


def test_installed_copy_is_the_one_imported(installed):
    py = str(installed["venv"] / "bin" / "python")
    proc = _run([py, "-c", "import syncnet, detectors, importlib.metadata as m; print(syncnet.__file__); "
                 "print(detectors.__file__); print(m.version('syncnet-longvideo'), syncnet.__version__)"],
                installed["outside"])
    assert proc.returncode == 0, proc.stderr
    syncnet_file, detectors_file, versions = proc.stdout.splitlines()
    for f in (syncnet_file, detectors_file):
        assert Path(f).is_relative_to(installed["purelib"]), f
    assert versions == f"{syncnet.__version__} {syncnet.__version__}"


def test_only_the_library_is_installed(installed):
    tops = {p.name for p in installed["purelib"].iterdir() if not p.name.endswith((".dist-info", ".pth"))}
    assert tops == {"syncnet", "detectors"}, tops
    assert (installed["purelib"] / "syncnet" / "_cli" / "weights.py").is_file()
    assert (installed["purelib"] / "syncnet" / "weights" / "__main__.py").is_file()
    assert (installed["purelib"] / "syncnet" / "reports" / "templates" / "report.html.j2").is_file()  # package data


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_console_command_help(installed, command):
    proc = _run([str(installed["venv"] / "bin" / command), "--help"], installed["outside"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {command} "), proc.stdout[:200]


def test_module_command_runs_installed(installed):
    proc = _run([str(installed["venv"] / "bin" / "python"), "-m", "syncnet.weights", "--help"], installed["outside"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m syncnet.weights "), proc.stdout[:200]


# --- the metadata agrees with the rest of the repository (no install needed) ------------------

def _requirements(name: str) -> list[str]:
    lines = (REPO / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "-r"))]


def test_metadata_matches_requirements_and_version():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == "syncnet-longvideo"
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "syncnet.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", syncnet.__version__)
    assert project["dependencies"] == _requirements("requirements.txt")
    assert project["optional-dependencies"]["dev"] == _requirements("requirements-dev.txt")
    assert project["optional-dependencies"]["cluster"] == _requirements("requirements-cluster.txt")
    assert "-r requirements-cluster.txt" in (REPO / "requirements-dev.txt").read_text()  # CI runs the Ray tests
    assert {k: v.split(":")[0] for k, v in project["scripts"].items()} == {
        k: f"syncnet._cli.{v}" for k, v in COMMANDS.items()}
    assert all(v.endswith(":entry") for v in project["scripts"].values())
