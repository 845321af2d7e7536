"""Meta-tests of the BSD socket suite (suites/sockets): for each bug class it claims to catch, a
broken twin of the board app (firmware_py/hil_sock_<bug>.py, one bug each) is run in place of the
real one (HIL_SOCK_APP names the module) and the cases aimed at that bug fail as test failures,
not errors, on Linux's stack (native) and on lwIP (mps2_an385); the real app passes them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT

SUITE = ROOT / "suites" / "sockets"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")
APP_ENV = "HIL_SOCK_APP"  # suites/sockets/conftest.py
LWIP = "mps2_an385"  # MicroPython's lwIP sockets (modlwip) over QEMU user networking

needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")

PARSER_TESTS = [
    "test_message_split_at_every_byte_boundary",
    "test_many_messages_merged_in_one_send",
    "test_random_segmentation_with_pauses",
]
PARSER_CASES = [f"{t}[{f}]" for t in PARSER_TESTS for f in ("len", "line")]
DOWNLOAD = "test_download_survives_short_sends_while_the_host_stalls"
UDP_ECHO = "test_udp_echo_is_byte_exact"


@dataclass(frozen=True)
class Twin:
    """A broken board app and the cases that must catch it. Case names without the board id."""

    module: str
    files: tuple[str, ...]  # suite files to run
    select: str | None  # pytest -k: only the cases aimed at the bug (None: the whole files)
    caught: tuple[str, ...]  # must fail on every board
    caught_on_lwip: tuple[str, ...] = ()  # must fail on lwIP too (the bug shows only there)
    unharmed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # board -> must still pass


TWINS = {
    "hil_sock_naive": Twin("hil_sock_naive", ("test_msgparser.py",), None, tuple(PARSER_CASES)),
    # Linux never returns a short count from a blocking send: only the event-loop variant shows it
    "hil_sock_shortsend": Twin(
        "hil_sock_shortsend",
        ("test_app.py",),
        "download",
        caught=(f"{DOWNLOAD}[nonblocking]",),
        caught_on_lwip=(f"{DOWNLOAD}[blocking]",),
        unharmed={"native": (f"{DOWNLOAD}[blocking]",)},
    ),
    "hil_sock_noclose": Twin(
        "hil_sock_noclose",
        ("test_app.py",),
        "closes or flat",
        caught=("test_board_closes_each_accepted_connection", "test_open_socket_count_stays_flat_over_50_connections"),
    ),
    # at the socket limit the app's pool closes a held connection to make room: every one dies
    "hil_sock_evict": Twin(
        "hil_sock_evict",
        ("test_app.py",),
        "at_the_limit",
        caught=("test_new_socket_at_the_limit_fails_and_held_connections_live_on",),
    ),
    # a 512-byte receive buffer: every datagram above 512 bytes comes back cut, the small ones whole
    "hil_sock_udptrunc": Twin(
        "hil_sock_udptrunc",
        ("test_app.py",),
        "udp_echo_is_byte_exact",
        caught=tuple(f"{UDP_ECHO}[{n}]" for n in (513, 1023, 1025, 1400, 1472, 1473, 4097, 8193)),
        unharmed={"native": (f"{UDP_ECHO}[1]", f"{UDP_ECHO}[511]"), LWIP: (f"{UDP_ECHO}[1]", f"{UDP_ECHO}[511]")},
    ),
}


def case_name(junit_name: str, board: str) -> str:
    """'test_x[native-len]' -> 'test_x[len]', 'test_x[native]' -> 'test_x'."""
    return junit_name.replace(f"[{board}-", "[").replace(f"[{board}]", "")


def run_suite(
    tmp_path: Path, files: tuple[str, ...], board: str, app: str | None, select: str | None = None
) -> dict[str, str]:
    """Run suite files on one board with `app` as the board app; outcome per case (passed,
    failure, error or skipped; xfail counts as skipped in JUnit)."""
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in (APP_ENV, "PYTEST_ADDOPTS")}
    if app:
        env[APP_ENV] = app
    cmd = [sys.executable, "-m", "pytest", *(str(SUITE / f) for f in files), "--board", board,
           "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}"]  # fmt: skip
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    print(proc.stdout[-3000:])  # pytest shows it if the meta-test fails
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case_name(case.get("name"), board)] = kinds[0] if kinds else "passed"
    return outcomes


BOARDS = [pytest.param("native", marks=needs_micropython), LWIP]


@pytest.mark.parametrize("target", BOARDS)  # not "board": the harness plugin parametrizes that
@pytest.mark.parametrize("twin", TWINS.values(), ids=list(TWINS))
def test_suite_catches_the_broken_twin(tmp_path, twin, target):
    outcomes = run_suite(tmp_path, twin.files, target, twin.module, twin.select)
    must_fail = set(twin.caught) | (set(twin.caught_on_lwip) if target == LWIP else set())
    assert must_fail <= set(outcomes), f"cases not run: {sorted(must_fail - set(outcomes))}; ran {outcomes}"
    # a test failure (wrong bytes, no EOF, fewer sockets), never an infrastructure error
    assert {name: outcomes[name] for name in must_fail} == dict.fromkeys(must_fail, "failure"), outcomes
    assert "error" not in outcomes.values(), outcomes
    for name in twin.unharmed.get(target, ()):
        assert outcomes[name] == "passed", f"{name}: {outcomes[name]} (the twin's bug does not reach this case)"


@needs_micropython
def test_suite_passes_the_real_app_on_native(tmp_path):
    """The cases the twins fail pass with the real app (hil_sock_msg): on Linux's stack all of them,
    including the datagrams past lwIP's reassembly limit."""
    outcomes = run_suite(tmp_path, ("test_msgparser.py", "test_app.py"), "native", None)
    assert set(PARSER_CASES) <= set(outcomes)
    for twin in TWINS.values():
        assert set(twin.caught) | set(twin.caught_on_lwip) <= set(outcomes), twin.module
    assert set(outcomes.values()) == {"passed"}, outcomes
