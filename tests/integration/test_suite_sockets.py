"""Meta-tests of the BSD socket suite (suites/sockets): its message-parser cases catch a board app
that assumes one recv() = one message, its parser frames correctly under real MicroPython, and its
expected-failure data names real tests and boards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT

SUITE = ROOT / "suites" / "sockets"
FIRMWARE_PY = ROOT / "firmware_py"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")
PARSER_CASES = 6  # test_msgparser.py: 3 tests x 2 framings

needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")




def run_parser_suite(tmp_path: Path, parser: str | None, board: str = "native") -> dict[str, str]:
    """Run suites/sockets/test_msgparser.py on one board; outcome per test case."""
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_SOCK_PARSER", "PYTEST_ADDOPTS")}
    if parser:
        env["HIL_SOCK_PARSER"] = parser
    cmd = [sys.executable, "-m", "pytest", str(SUITE / "test_msgparser.py"), "--board", board,
           "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return outcomes


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("native", marks=needs_micropython),
        "mps2_an385",  # MicroPython's lwIP sockets: segments arrive as the embedded stack delivers them
    ],
)
def test_suite_catches_a_parser_that_assumes_one_recv_is_one_message(tmp_path, target):
    outcomes = run_parser_suite(tmp_path, "hil_sock_naive", target)
    assert len(outcomes) == PARSER_CASES, outcomes
    # every case fails as a test failure (wrong replies or the app crashing), not an infrastructure error
    assert set(outcomes.values()) == {"failure"}, outcomes


@needs_micropython
def test_suite_passes_the_framing_parser(tmp_path):
    outcomes = run_parser_suite(tmp_path, None)
    assert len(outcomes) == PARSER_CASES, outcomes
    assert set(outcomes.values()) == {"passed"}, outcomes




