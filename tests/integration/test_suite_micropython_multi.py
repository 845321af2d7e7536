"""Meta-tests of suites/micropython_multi (MicroPython's tests/multi_net through the duts fixture) on
real tap boards, lwIP (mps2_an385_tap) with Linux (qemu_x86_tap), both orders:

- three multi_net files pass (TCP, UDP with broadcast/wait, accept+recv), judged against the CPython
  run as run-multitests.py judges them (none of them has a .exp file);
- teeth: a tree (HIL_MP_SRC) whose tcp_data twin has the MicroPython client send one byte less, and
  one whose .exp file expects a different line, fail as test failures, not errors, while the
  untouched tcp_data in the same tree passes;
- the protocol template the harness injects is the fetched tree's run-multitests.py's, verbatim."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_suite_micropython import real_tests_dir

SUITE = REPO / "suites" / "micropython_multi"
BOARDS = ("mps2_an385_tap", "qemu_x86_tap")
MIXED = "(mps2_an385_tap-qemu_x86_tap or qemu_x86_tap-mps2_an385_tap)"

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-arm"), reason="needs qemu-system-arm"),
    pytest.mark.skipif(os.geteuid() != 0, reason="tap boards need root (network namespaces)"),
]


@pytest.fixture(scope="module")
def tree() -> Path:
    return real_tests_dir()


def run_suite(tmp_path: Path, select: str, env: dict | None = None) -> dict[str, str]:
    xml = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-k", select, "-p", "no:cacheprovider", "-q",
           f"--junitxml={xml}", f"--hil-logs={tmp_path / 'logs'}", *[f"--board={b}" for b in BOARDS]]  # fmt: skip
    if targets := os.environ.get("HIL_TARGETS"):
        cmd.append(f"--targets={targets}")
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip
    assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        case.get("name"): next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        for case in ET.parse(xml).iter("testcase")
    }


def test_multi_net_files_pass_between_lwip_and_linux(tmp_path, tree):
    cases = run_suite(tmp_path, f"{MIXED} and (tcp_data or udp_data or tcp_accept_recv)")
    assert len(cases) == 6, cases
    assert set(cases.values()) == {"passed"}, cases


TWIN_SHORT = (
    "# tcp_data.py's broken twin: under MicroPython the client sends one byte less\n"
    "import sys\nSHORT = sys.implementation.name == 'micropython'\n"
)


def _twin_tree(root: Path, tree: Path) -> Path:
    tests = root / "tests"
    (tests / "multi_net").mkdir(parents=True)
    (tests / "run-tests.py").write_text("# a marker: mp_tree wants it\n")
    source = (tree / "multi_net" / "tcp_data.py").read_text()
    (tests / "multi_net" / "tcp_data.py").write_text(source)
    short = source.replace('s.send(b"client to server")', 's.send(b"client to server"[: 15 if SHORT else 16])')
    assert short != source
    (tests / "multi_net" / "tcp_data_short.py").write_text(TWIN_SHORT + short)
    (tests / "multi_net" / "tcp_data_badexp.py").write_text(source)
    (tests / "multi_net" / "tcp_data_badexp.py.exp").write_text(
        "--- instance0 ---\nb'client to server'\n--- instance1 ---\nb'server to client!'\n"
    )
    return root


def test_a_wrong_output_is_a_failure(tmp_path, tree):
    src = _twin_tree(tmp_path / "src", tree)
    cases = run_suite(tmp_path / "run", MIXED, env={"HIL_MP_SRC": str(src)})
    assert len(cases) == 6, cases
    for name, verdict in cases.items():
        twin = "tcp_data_short" in name or "tcp_data_badexp" in name
        assert verdict == ("failure" if twin else "passed"), (name, verdict)


def test_the_injected_template_is_run_multitests_own(tree):
    sys.path.insert(0, str(SUITE))
    try:
        import mm_protocol
    finally:
        sys.path.remove(str(SUITE))
    upstream = {}
    for node in ast.parse((tree / "run-multitests.py").read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                upstream[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    assert upstream["APPEND_CODE_TEMPLATE"] == mm_protocol.APPEND_CODE_TEMPLATE
    assert upstream["IGNORE_OUTPUT_MATCHES"] == mm_protocol.IGNORE_OUTPUT_MATCHES
    assert upstream["INSTANCE_READ_TIMEOUT_S"] == mm_protocol.INSTANCE_READ_TIMEOUT_S
