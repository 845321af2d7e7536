"""Multi-board tests on lab devices (harness/pytest/multi.py): a lab file's devices are leased for
pairings like any board (locked by the run's own pool), pair with each other and with a QEMU board
for the cases that need no shared network (CAN: every link is joined in the host), and skip with
the reason where they cannot run (one device in two roles; no shared network).

The devices are emulated stand-ins (harness/testing/emulated.py): mps2_an385 under QEMU behind its
pty, real MicroPython on lwIP, its SLCAN UART reached as the lab entry's python-can ``slcan``
channel on ``socket://``. Each sits in its own QEMU user-mode network (10.0.2.15 behind NAT), so two
of them share no network: the lab file says so by leaving ``net`` out of their capabilities."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.board import Board
from harness.config.labs import board_spec, load_lab
from harness.pytest.multi import LAB_IP_CODE
from harness.testing.emulated import EmulatedDevice
from tests.conftest import REPO
from tests.unit.config.test_labs import lab_file

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-arm"), reason="needs qemu-system-arm"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the QEMU board's pairing instance needs a tap (root)"),
]

CASES = "can_request_response_between_nodes or can_burst_arrives_whole_and_in_order or echo_one_byte"


@pytest.fixture
def devices(tmp_path):
    with EmulatedDevice("mps2_an385", log_dir=tmp_path / "emu-a") as a, \
         EmulatedDevice("mps2_an385", log_dir=tmp_path / "emu-b") as b:  # fmt: skip
        yield a, b


def device_entry(name: str, device: EmulatedDevice) -> str:
    can = f'{{ interface = "slcan", channel = "{device.board.launcher.can.channel}", bitrate = 500000 }}'
    return (f'[[device]]\nname = "{name}"\nport = "{device.port}"\nflasher = "none"\n'
            f"capabilities = {{ can = true }}\ncan = {can}\n")  # fmt: skip


def test_lab_devices_pair_for_can_and_skip_where_no_network_is_shared(no_leftovers, devices, tmp_path):
    lab = lab_file(tmp_path, device_entry("bench-a", devices[0]) + device_entry("bench-b", devices[1]))
    # a device's address comes from its own REPL: the active interface's (lwIP's DHCP lease here)
    with Board(board_spec(load_lab(lab).devices[0], devices[0].port), log_dir=tmp_path / "direct") as board:
        assert board.exec(LAB_IP_CODE).split() == ["IP", "10.0.2.15"]

    xml = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(REPO / "suites" / "multi"), "-k", CASES, "-p", "no:cacheprovider",
           "-q", f"--junitxml={xml}", f"--hil-logs={tmp_path / 'logs'}", f"--hil-lab={lab}",
           "--board=bench-a", "--board=bench-b", "--board=mps2_an385", "--hil-lock-timeout=5"]  # fmt: skip
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = {}
    for case in ET.parse(xml).iter("testcase"):
        result = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        cases[case.get("name")] = (result.tag if result is not None else "passed",
                                   (result.get("message") or "") if result is not None else "")  # fmt: skip
    assert len(cases) == 3 * 9, sorted(cases)

    def verdicts(prefix: str) -> dict[str, str]:
        return {n[n.index("[") + 1 : -1]: v for n, (v, _) in cases.items() if n.startswith(prefix)}

    for case in ("test_can_request_response_between_nodes", "test_can_burst_arrives_whole_and_in_order"):
        got = verdicts(case)
        # two lab devices, and a lab device with the QEMU board (on the multi segment), both ways
        for pair in ("bench-a-bench-b", "bench-b-bench-a", "bench-a-mps2_an385", "mps2_an385-bench-b",
                     "mps2_an385-mps2_an385"):  # fmt: skip
            assert got[pair] == "passed", (case, pair, cases[f"{case}[{pair}]"], proc.stdout[-3000:])
        assert got["bench-a-bench-a"] == "skipped"
        assert cases[f"{case}[bench-b-bench-b]"][1].endswith(
            "lab device bench-b cannot take two roles (server, client): it is one device")
    echo = verdicts("test_echo_one_byte")
    assert echo["mps2_an385-mps2_an385"] == "passed"
    assert {v for p, v in echo.items() if "bench" in p} == {"skipped"}
    assert cases["test_echo_one_byte[bench-a-bench-b]"][1].endswith("board bench-a (server) lacks capability: net")
    # the devices were leased and locked by the run (the lock files name them), and let go at its end
    locks = list((tmp_path / "locks").glob("*.lock"))
    assert len(locks) == 2 and all(p.read_text() == "" for p in locks), locks
