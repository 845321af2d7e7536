"""harness/paths.py: where targets/, firmware_py/, ... are found: HIL_<NAME> wins, then a project
root above the working directory, then the checkout; none at all is a ConfigError naming HIL_<NAME>."""

from __future__ import annotations

import pytest

from harness import paths
from harness.errors import ConfigError
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _fresh_roots():
    roots = paths._roots  # cached per working directory
    roots.cache_clear()
    yield
    roots.cache_clear()


def project(root):
    for name in ("targets", "firmware_py"):
        (root / name).mkdir(parents=True)
    return root


def test_env_override_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", str(tmp_path / "mine"))
    assert paths.resource("targets") == tmp_path / "mine"
    monkeypatch.setenv("HIL_TARGETS", "")  # empty: as if unset
    assert paths.resource("targets") == REPO / "targets"


def test_project_root_above_the_cwd_comes_before_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("HIL_TARGETS", raising=False)
    monkeypatch.delenv("HIL_SUITES", raising=False)
    root = project(tmp_path / "proj")
    (root / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(root / "deep" / "er")
    assert paths.resource("targets") == root / "targets"
    assert paths.resource("suites") == REPO / "suites"  # not in the user's root: the checkout's


def test_no_folder_anywhere_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("HIL_SUITES", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paths, "_roots", lambda cwd: ())
    with pytest.raises(ConfigError) as info:
        paths.resource("suites")
    message = str(info.value)
    assert message.startswith(f"cannot find the project's suites/ folder (not above {tmp_path},")
    assert message.endswith("run from a checkout or set HIL_SUITES")


def test_unknown_resource():
    with pytest.raises(ValueError, match=r"unknown resource 'images'; one of targets, firmware_py"):
        paths.resource("images")
