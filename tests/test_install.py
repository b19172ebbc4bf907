"""Installed copies ship and find the bundled models: a built wheel, `pip install .` and
`pip install -e .`, each in a fresh virtual environment, used from another folder.

The environments reuse this interpreter's packages (torch, PySide6) and pip, and install the
project itself with --no-deps --no-index: nothing is downloaded."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cae.bundled import bundled_file_name, bundled_model_path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "cae", "app", "resources")
MODELS = sorted(p.name for p in (ROOT / "resources").glob("*.safetensors"))
PIP = ("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index")


def _run(args, cwd, **env):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the project's source tree, so builds leave nothing in the checkout."""
    src = tmp_path_factory.mktemp("install") / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
        else:
            shutil.copy2(ROOT / name, src / name)
    return src


def _venv(folder: Path) -> Path:
    """A fresh environment over this interpreter's site-packages; returns its bin folder."""
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", folder], "/")
    return folder / ("Scripts" if os.name == "nt" else "bin")


@pytest.fixture(scope="module")
def wheel(source):
    dist = source.parent / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", dist, source], source.parent)
    (built,) = dist.glob("cae_explorer-*.whl")
    return built


@pytest.fixture(scope="module", params=["wheel", "pip install .", "pip install -e ."])
def installed(request, source, wheel):
    """(bin folder, the folder the bundled models should be found in) for each kind of install:
    package data in site-packages, or the source tree's resources/ for an editable install."""
    bin_dir = _venv(source.parent / f"venv-{request.param_index}")
    target = {"wheel": [wheel], "pip install .": [source], "pip install -e .": ["-e", source]}
    _run([bin_dir / "python", *PIP, *target[request.param]], source.parent)
    editable = request.param == "pip install -e ."
    models = "src/resources" if editable else "site-packages/cae/resources"
    return bin_dir, models


def test_the_wheel_ships_every_bundled_model_and_only_the_packages(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for model in MODELS:
            assert z.read(f"cae/resources/{model}") == (ROOT / "resources" / model).read_bytes()
    assert {n.split("/")[0] for n in names if not n.startswith("cae_explorer-")} == {"app", "cae"}
    assert "cae/bundled.py" in names and "app/platform_check.py" in names


def test_installed_copy_finds_the_bundled_model_from_another_folder(installed, tmp_path):
    bin_dir, models = installed
    script = ("from cae.bundled import bundled_model_path as b; "
              "print(b()); print(b('fashion-mnist')); print(b('no-such-set'))")
    mnist, fashion, none = _run([bin_dir / "python", "-c", script], tmp_path).splitlines()
    assert mnist.endswith(f"{models}/model.safetensors")
    assert Path(mnist).read_bytes() == (ROOT / "resources" / "model.safetensors").read_bytes()
    assert none == "None"
    assert (fashion != "None") == ("fashion_mnist.safetensors" in MODELS)
    info = json.loads(_run([bin_dir / "cae", "info", mnist], tmp_path))
    assert info["metadata"]["dataset"] == "mnist"


def test_installed_command_starts_with_the_map(installed, tmp_path):
    bin_dir, _ = installed
    probe = tmp_path / "probe.json"
    _run([bin_dir / "cae-explorer"], tmp_path, QT_QPA_PLATFORM="offscreen",
         CAE_EXPLORER_STARTUP_PROBE=str(probe), XDG_CONFIG_HOME=str(tmp_path / "config"),
         XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert json.loads(probe.read_text())["points"] == 10000  # the bundled model's codes


def test_a_checkout_finds_its_resources_folder():
    assert bundled_model_path() == ROOT / "resources" / "model.safetensors"
    assert bundled_model_path("no-such-set") is None
    assert bundled_file_name("fashion-mnist") == "fashion_mnist.safetensors"
    with pytest.raises(ValueError, match="bad dataset name"):
        bundled_model_path("../model")
