"""The CAN suite (suites/can) catches broken firmware, and its paths work end to end:

- its canfdtest echo case passes against the board's echo app and fails, naming the first lost
  frame, against the same app dropping every 100th frame (HIL_CAN_ECHO_DROP_EVERY=100);
- mps2_an385 gets a CAN link on its UART1 (its target file's [can]: a second -serial that QEMU maps to
  TCP, an SLCAN speaker in firmware_py on the board) and the suite's cases pass there;
- expected failures name real tests; the lab-file hook opens the interface a bench names."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from tests.conftest import REPO

SUITE = REPO / "suites" / "can"
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) \S+::(\S+)", re.M)


def run_suite(pytester: pytest.Pytester, *args: str, timeout: float = 600):
    result = pytester.runpytest_subprocess(
        *args, "-p", "no:cacheprovider", "-rA", "--hil-logs", str(pytester.path / "logs"), timeout=timeout
    )
    text = result.stdout.str()
    return {name: outcome for outcome, name in OUTCOME.findall(text)}, text


def echo_case(pytester, monkeypatch, drop_every: int | None):
    if drop_every is None:
        monkeypatch.delenv("HIL_CAN_ECHO_DROP_EVERY", raising=False)
    else:
        monkeypatch.setenv("HIL_CAN_ECHO_DROP_EVERY", str(drop_every))
    return run_suite(pytester, f"{SUITE / 'test_can_flow.py'}::test_canfdtest_echo", "--board", "qemu_x86")


def test_echo_case_passes_against_the_echo_app(pytester, monkeypatch, no_leftovers):
    outcomes, text = echo_case(pytester, monkeypatch, None)
    assert outcomes == {"test_canfdtest_echo[qemu_x86]": "PASSED"}, text[-3000:]


def test_echo_case_catches_firmware_dropping_every_100th_frame(pytester, monkeypatch, no_leftovers):
    outcomes, text = echo_case(pytester, monkeypatch, 100)
    assert outcomes == {"test_canfdtest_echo[qemu_x86]": "FAILED"}, text[-3000:]

    # frame #99 (the 100th) got no reply: the next reply is the one to #100, and the suite says so
    def reply(seq: int) -> str:  # canfdtest: frame #seq carries seq+i, its reply seq+i+1
        return bytes((seq + i + 1) & 0xFF for i in range(8)).hex()

    expected = (f"frame #99: expected reply {reply(99)} but got {reply(100)} (dlc 8), which is the reply to "
                "#100: frames lost, duplicated or reordered")  # fmt: skip
    assert expected in text, text[-3000:]
    assert "hil_infrastructure_error" not in text  # a test failure, not an infrastructure error


# --- mps2_an385: CAN over UART1 ------------------------------------------------------------------
MPS2_SELECT = (
    "ids or remote or every_dlc or invalid_dlc or masked or raw_filter_matrix and filter_effrtr_eff "
    "or canfdtest or overflow or fd_ or reopen"
)


def test_suite_runs_on_mps2_over_uart1(pytester, tmp_path, no_leftovers):
    """The CAN cases on mps2_an385, its SLCAN speaker on UART1 at 0x40005000 (driven with
    machine.mem32), the host on python-can slcan over QEMU's second -serial: all pass, CAN FD
    included (the SLCAN line carries FD frames)."""
    outcomes, text = run_suite(
        pytester, str(SUITE), "--board", "mps2_an385", "-k", MPS2_SELECT, timeout=900
    )
    expected = {
        "test_standard_ids_host_to_board", "test_standard_ids_board_to_host", "test_extended_ids_host_to_board",
        "test_extended_ids_board_to_host", "test_remote_frames_host_to_board", "test_remote_frames_board_to_host",
        "test_every_dlc_host_to_board", "test_every_dlc_board_to_host", "test_invalid_dlc_rejected_on_send",
        "test_invalid_dlc_on_the_wire_is_dropped", "test_masked_standard_filter", "test_masked_extended_filter",
        "test_canfdtest_echo", "test_receive_queue_overflow_reported", "test_reopen_close_without_leaks",
        "test_fd_payloads_up_to_64_bytes", "test_fd_bit_rate_switch_flag_kept",
    }  # fmt: skip
    want = {f"{name}[mps2_an385]": "PASSED" for name in expected}
    for variant in ("filter_effrtr_eff", "filter_effrtr_effrtr"):
        want[f"test_raw_filter_matrix[mps2_an385-{variant}]"] = "PASSED"
    assert outcomes == want, text[-4000:]


# --- data and hooks ------------------------------------------------------------------------------
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
    """A real bench: the board has no QEMU link; the lab device named like it says which python-can
    interface reaches its bus. Here: python-can's virtual bus, which the test joins too."""
    (tmp_path / "lab-bench.toml").write_text(
        '[lab]\nname = "bench"\n[[device]]\nname = "pico-can"\nport = "/dev/ttyHILNONE"\n'
        'can = { interface = "virtual", channel = "hil-can-test", bitrate = 250000 }\n'
    )
    monkeypatch.setenv("HIL_TARGETS", str(tmp_path))
    monkeypatch.syspath_prepend(str(SUITE))
    sys.modules.pop("hilcan_host", None)
    import can
    import hilcan_host

    class BenchBoard:
        name = "pico-can"
        launcher = None

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

    from harness.errors import InfrastructureError

    with pytest.raises(InfrastructureError, match="has capability 'can' but no CAN link"):
        hilcan_host.open_host_bus(Unknown())
