"""Meta-test of the smoke suite's file case: a board file helper that keeps whole 512-byte sectors
only (firmware_py/hil_fs_sector.py) passed the old 512-byte round trip; the off-boundary sizes
catch it, as test failures, while the real helper passes them."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import REPO

CASE = "suites/smoke/test_smoke.py::test_file_round_trip"


def outcomes(tmp_path, app: str | None) -> dict[str, str]:
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_FS_APP", "PYTEST_ADDOPTS")}
    if app:
        env["HIL_FS_APP"] = app
    cmd = [sys.executable, "-m", "pytest", CASE, "--board", "native", "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        result[case.get("name")] = kinds[0] if kinds else "passed"
    return result


@pytest.mark.parametrize(("app", "expected"), [
    (None, {"1": "passed", "511": "passed", "513": "passed", "4097": "passed"}),
    ("hil_fs_sector", {"1": "failure", "511": "failure", "513": "failure", "4097": "failure"}),
])  # fmt: skip
def test_file_round_trip_catches_an_off_by_a_sector_helper(tmp_path, app, expected):
    got = outcomes(tmp_path, app)
    assert {name.split("-")[-1].rstrip("]"): kind for name, kind in got.items()} == expected, got
