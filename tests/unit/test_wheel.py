"""The wheel carries targets/, firmware_py/, firmware_c/ and suites/ under harness/_data/, and
harness.paths finds them there when no checkout is around (pyproject.toml's [tool.setuptools])."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.paths import RESOURCES
from tests.conftest import REPO

CHILD = """
import json, harness, harness.paths as p
print(json.dumps({"harness": harness.__file__, **{n: str(p.resource(n)) for n in p.RESOURCES}}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy: an in-tree build leaves build/ behind, whose stale files a later wheel would pick up
    src = out / "src"
    junk = shutil.ignore_patterns(".git", ".venv", "hil-out", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(REPO, src, ignore=junk)
    # the same build `make venv` runs for the editable install (isolated: setuptools from the index)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = out.glob("hil_harness-*.whl")
    return path


def test_wheel_has_every_module_and_resource(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO)) for p in (REPO / "harness").rglob("*.py") if "_data" not in p.parts}
    assert modules - names == set(), "add the missing package to [tool.setuptools] packages in pyproject.toml"
    for name in RESOURCES:
        files = {
            f"harness/_data/{p.relative_to(REPO)}"
            for p in (REPO / name).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        }
        assert files and files - names == set(), name
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_wheel_finds_its_resources_without_a_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIL_")}
    env["PYTHONPATH"] = str(site)
    # -S: no site-packages, so neither the venv's editable install nor anything else can lend a checkout
    result = subprocess.run(
        [sys.executable, "-S", "-c", CHILD], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    found = {k: Path(v) for k, v in json.loads(result.stdout).items()}
    assert found["harness"].is_relative_to(site)
    for name in RESOURCES:
        assert found[name] == site / "harness" / "_data" / name
    assert (found["targets"] / "microbit.toml").is_file()
    assert (found["firmware_py"] / "hil_info.py").is_file()
    assert (found["suites"] / "smoke" / "test_smoke.py").is_file()
