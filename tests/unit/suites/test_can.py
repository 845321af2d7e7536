"""The CAN suite (suites/can) catches broken firmware, and its paths work end to end:

- its canfdtest echo case passes against the board's echo app and fails, naming the first lost
  frame, against the same app dropping every 100th frame (HIL_CAN_ECHO_DROP_EVERY=100);
- mps2_an385 gets a CAN link on its UART1 (its target file's [can]: a second -serial that QEMU maps to
  TCP, an SLCAN speaker in firmware_py on the board) and the suite's cases pass there;
- expected failures name real tests; a bench's python_can link opens the interface it names."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from tests.conftest import REPO

SUITE = REPO / "suites" / "can"


def test_expected_failures_name_real_tests():
    data = tomllib.loads((SUITE / "expected_failures.toml").read_text())
    defined = set()
    for path in SUITE.glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.M))
    assert data, "no expected failures listed"
    for board, tests in data.items():
        assert board == "*" or (REPO / "targets" / f"{board}.toml").exists(), board
        for name, reason in tests.items():
            assert name in defined, f"[{board}] {name}: no such test in suites/can"
            assert len(reason) > 40, f"[{board}] {name}: say why"


def test_cases_count_and_marks():
    # at least 20 cases, every one needing the board's CAN capability
    names = []
    for path in sorted(SUITE.glob("test_*.py")):
        text = path.read_text()
        assert 'pytestmark = pytest.mark.requires("can")' in text or "def test_" not in text, path
        names += re.findall(r"^def (test_\w+)\(", text, re.M)
    assert len(names) >= 20, names


def test_lab_file_names_a_bench_can_interface(tmp_path, monkeypatch):
    """A real bench: the board has no QEMU link; its lab device's can = {...} (the board spec's [can],
    link python_can) says which python-can interface reaches its bus. Here: python-can's virtual
    bus, which the test joins too."""
    from harness.config.labs import lab_boards

    lab = tmp_path / "lab-bench.toml"
    lab.write_text(
        '[lab]\nname = "bench"\n[[device]]\nname = "pico-can"\nport = "/dev/ttyHILNONE"\n'
        'can = { interface = "virtual", channel = "hil-can-test", bitrate = 250000 }\n'
    )
    monkeypatch.syspath_prepend(str(SUITE))
    sys.modules.pop("hilcan_host", None)
    import can
    import hilcan_host

    class BenchBoard:
        name = "pico-can"
        launcher = None
        spec = lab_boards([lab])["pico-can"]

    assert hilcan_host.board_open_args(BenchBoard()) == "bitrate=250000"
    bus = hilcan_host.open_host_bus(BenchBoard())
    peer = can.Bus(interface="virtual", channel="hil-can-test")
    try:
        peer.send(can.Message(arbitration_id=0x42, data=b"hi", is_extended_id=False))
        got = bus.recv(2)
        assert got is not None and (got.arbitration_id, bytes(got.data)) == (0x42, b"hi")
    finally:
        bus.shutdown()
        peer.shutdown()

    class Unknown(BenchBoard):
        name = "no-such-device"
        spec = lab_boards([lab])["pico-can"]
        spec.can.link = "none"

    from harness.errors import InfrastructureError

    with pytest.raises(InfrastructureError, match="has capability 'can' but no CAN link"):
        hilcan_host.open_host_bus(Unknown())


