"""The CAN suite (suites/can) catches broken firmware, and its paths work end to end:

- its echo cases pass against the board's echo app (hil_can.echo) and fail, as test failures naming
  what went wrong, against each broken twin of it (HIL_CAN_ECHO=<module>), on qemu_x86 and mps2_an385:
  hil_can_drop (every 100th frame unanswered: "lost"), hil_can_nortr (RTR flag dropped),
  hil_can_stdid (extended ids cut to 11 bits), hil_can_reorder (replies in swapped pairs); the
  canfdtest echo (standard-id data frames) misses the RTR and id-width twins, the mixed-frame echo
  catches them all;
- hil_can_rcvbuf (the SocketCAN receive queue left at the kernel minimum) loses frames in the kernel
  on qemu_x86, and the board's counter says so: the failure names sock_rxq_drops;
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


ECHO_CASES = f"{SUITE / 'test_can_flow.py'}::test_canfdtest_echo", f"{SUITE / 'test_can_mixed.py'}::test_mixed_echo"


def echo_cases(pytester, monkeypatch, app: str | None, board: str):
    """The canfdtest and mixed-frame echo cases on ``board`` against firmware_py module ``app``."""
    monkeypatch.delenv("HIL_CAN_SEED", raising=False)
    if app is None:
        monkeypatch.delenv("HIL_CAN_ECHO", raising=False)
    else:
        monkeypatch.setenv("HIL_CAN_ECHO", app)
    outcomes, text = run_suite(pytester, *ECHO_CASES, "--board", board, timeout=900)
    assert "hil_infrastructure_error" not in text and "ERROR" not in outcomes.values(), text[-3000:]
    return {name.split("[")[0]: outcome for name, outcome in outcomes.items()}, text


def test_echo_cases_pass_against_the_echo_app(pytester, monkeypatch, no_leftovers):
    outcomes, text = echo_cases(pytester, monkeypatch, None, "qemu_x86")
    assert outcomes == {"test_canfdtest_echo": "PASSED", "test_mixed_echo": "PASSED"}, text[-3000:]


def canfdtest_reply(seq: int) -> str:  # canfdtest: frame #seq carries seq+i, its reply seq+i+1
    return bytes((seq + i + 1) & 0xFF for i in range(8)).hex()


# frame #99 (the 100th) got no reply: the next reply is the one to #100, and canfdtest says so
DROP_99 = (f"frame #99: expected reply {canfdtest_reply(99)} but got {canfdtest_reply(100)} (dlc 8), which is the "
           "reply to #100: frames lost, duplicated or reordered")  # fmt: skip

# twin -> (the canfdtest echo's outcome, what the failures say)
TWINS = {
    "hil_can_drop": ("FAILED", [": reply #99 lost", DROP_99]),
    "hil_can_nortr": ("PASSED", ["altered (remote True -> False"]),
    "hil_can_stdid": ("PASSED", ["extended True -> False"]),
    "hil_can_reorder": ("FAILED", [": reply #0 reordered"]),
}  # fmt: skip


@pytest.mark.parametrize("target", ["qemu_x86", "mps2_an385"])
@pytest.mark.parametrize("twin", list(TWINS))
def test_echo_cases_catch_each_broken_twin(pytester, monkeypatch, no_leftovers, twin, target):
    canfdtest, says = TWINS[twin]
    outcomes, text = echo_cases(pytester, monkeypatch, twin, target)
    assert outcomes == {"test_canfdtest_echo": canfdtest, "test_mixed_echo": "FAILED"}, text[-3000:]
    for words in says:
        assert words in text, text[-3000:]
    assert "replay: HIL_CAN_SEED=" in text  # the failure says how to replay it


def test_kernel_drops_are_counted_and_named(pytester, monkeypatch, no_leftovers):
    """The receive queue at the kernel minimum: the kernel drops frames of the flow-controlled echo,
    the board's sock_rxq_drops (from /proc/net/can/rcvlist_all) counts them, the failure names it."""
    outcomes, text = echo_cases(pytester, monkeypatch, "hil_can_rcvbuf", "qemu_x86")
    assert outcomes["test_mixed_echo"] == "FAILED", text[-3000:]
    said = r"the board counted lost frames: sock_rxq_drops = (\d+) \(the SocketCAN socket's receive queue"
    found = re.search(said, text)
    assert found and int(found.group(1)) > 0, text[-3000:]


# --- mps2_an385: CAN over UART1 ------------------------------------------------------------------
MPS2_SELECT = (
    "ids or remote or every_dlc or invalid_dlc or masked or raw_filter_matrix and filter_effrtr_eff "
    "or canfdtest or overflow or fd_ or reopen or mixed_frames or mixed_echo"
)


def test_suite_runs_on_mps2_over_uart1(pytester, tmp_path, no_leftovers):
    """The CAN cases on mps2_an385, its SLCAN speaker on UART1 at 0x40005000 (driven with
    machine.mem32), the host on python-can slcan over QEMU's second -serial: all pass, CAN FD
    included (the SLCAN line carries FD frames)."""
    outcomes, text = run_suite(pytester, str(SUITE), "--board", "mps2_an385", "-k", MPS2_SELECT, timeout=900)
    expected = {
        "test_standard_ids_host_to_board", "test_standard_ids_board_to_host", "test_extended_ids_host_to_board",
        "test_extended_ids_board_to_host", "test_remote_frames_host_to_board", "test_remote_frames_board_to_host",
        "test_every_dlc_host_to_board", "test_every_dlc_board_to_host", "test_invalid_dlc_rejected_on_send",
        "test_invalid_dlc_on_the_wire_is_dropped", "test_masked_standard_filter", "test_masked_extended_filter",
        "test_canfdtest_echo", "test_receive_queue_overflow_reported", "test_reopen_close_without_leaks",
        "test_fd_payloads_up_to_64_bytes", "test_fd_bit_rate_switch_flag_kept",
        "test_mixed_frames_host_to_board", "test_mixed_frames_board_to_host", "test_mixed_echo",
    }  # fmt: skip
    want = {f"{name}[mps2_an385]": "PASSED" for name in expected}
    for variant in ("filter_effrtr_eff", "filter_effrtr_effrtr"):
        want[f"test_raw_filter_matrix[mps2_an385-{variant}]"] = "PASSED"
    assert outcomes == want, text[-4000:]


# --- data and hooks ------------------------------------------------------------------------------
