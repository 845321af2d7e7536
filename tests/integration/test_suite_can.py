"""The CAN suite (suites/can) catches broken firmware, and its paths work end to end:

- its canfdtest echo case passes against the board's echo app and fails, naming the first lost
  frame, against the same app dropping every 100th frame (HIL_CAN_ECHO_DROP_EVERY=100);
- mps2_an385 gets a CAN link on its UART1 (its target file's [can]: a second -serial that QEMU maps to
  TCP, an SLCAN speaker in firmware_py on the board) and the suite's cases pass there;
- expected failures name real tests; the lab-file hook opens the interface a bench names."""

from __future__ import annotations

import re

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




