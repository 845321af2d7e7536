"""Console: crash signatures while code runs (BoardCrashed with the dump, no timeout waited out),
the quiet-console probe for boards that crash silently, and read_until (the exec hot path's
exact wait) keeping pexpect's view of the unconsumed bytes."""

from __future__ import annotations

import time

import pexpect
import pytest

from harness.errors import BoardCrashed, BoardDied
from harness.io.console import Console
from tests.unit.io.test_console import ScriptedTransport

MPS2_CRASH = [r"^(?:HardFault|MemManage|BusFault|UsageFault|NMI) exception caught:", r"^uncaught NLR"]
DUMP = (b"HardFault exception caught:\r\nR0:   F0000000 R1:   00089870 R2:   F0000000 R3:   00000004\r\n"
        b"R12:  00011865 R13:  003FFE30 R14:  0001BF85 R15:  0001BFBE\r\nxPSR: 21000000\r\n")  # fmt: skip


def watching(*chunks: bytes, crash=MPS2_CRASH) -> Console:
    console = Console(ScriptedTransport(*chunks), timeout=0.5, crash=crash)
    console.crash_watch = True
    return console


def test_a_signature_split_across_reads_is_a_crash_with_the_whole_dump_and_the_output_before():
    console = watching(b"OKstep 1\r\nHard", b"Fault exception caught:\r\nR0:   F0000000", DUMP[45:])
    console.output_from = 2  # after "OK"
    started = time.monotonic()
    with pytest.raises(BoardCrashed) as info:
        console.read_until(b"\x04", timeout=10)
    assert time.monotonic() - started < 1.0  # not the 10 s timeout
    exc = info.value
    assert exc.signature == "HardFault exception caught:"
    assert exc.dump.startswith("HardFault exception caught:\nR0:   F0000000") and exc.dump.endswith("xPSR: 21000000")
    assert exc.output == "step 1\n"
    assert console.crashed is exc and not console.crash_watch
    text = str(exc.located("mps2_an385"))
    assert text.startswith("mps2_an385: board crashed (HardFault exception caught:) while running code")
    assert "--- crash dump ---\nHardFault" in text and "--- board output before the crash ---\nstep 1" in text
    assert isinstance(exc, BoardDied)  # the pool treats it as a dead board: restarted before its next use


def test_signatures_count_only_while_code_runs():
    console = watching(b"HardFault exception caught:\r\n>")
    console.crash_watch = False  # booting, soft reset, an interactive session: not the code under test
    assert console.read_until(b">", 1.0) == b"HardFault exception caught:\r\n"
    assert console.crashed is None


def test_a_crash_through_pexpect_expect_is_the_same_crash():
    console = watching(b"READY\r\nuncaught NLR\r\n")
    with pytest.raises(BoardCrashed, match=r"uncaught NLR"):
        console.expect_exact([b"DONE", b"\x04"], timeout=1.0)


def test_text_without_a_signature_is_plain_output():
    console = watching(b"HardFault is a word; not at a line start: HardFault exception caught:\x04")
    assert console.read_until(b"\x04", 1.0).startswith(b"HardFault is a word")  # ^ anchors at a line start
    assert console.crashed is None


def test_no_signatures_no_watch():
    console = watching(DUMP + b"\x04", crash=[])
    assert console.read_until(b"\x04", 1.0) == DUMP


def test_the_quiet_probe_is_asked_only_while_code_runs_and_its_crash_is_kept():
    calls = []

    def probe() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise BoardCrashed("CPU state XPSR=21000003 --C- T handler", "R15=00018cce")

    transport = ScriptedTransport(b"OKbefore\r\n")
    transport.read = lambda size, timeout, _r=transport.read: _r(size, timeout) or (time.sleep(timeout or 0) or b"")
    console = Console(transport, timeout=0.5, crash=MPS2_CRASH)
    console.on_quiet = probe
    console.crash_watch = True
    console.output_from = 2
    with pytest.raises(BoardCrashed) as info:
        console.read_until(b"\x04", timeout=10)
    assert len(calls) == 2 and console.crashed is info.value
    assert info.value.output == "before\n"
    console.crashed, console.crash_watch = None, False
    calls.clear()
    with pytest.raises(pexpect.TIMEOUT):
        console.read_until(b"\x04", timeout=0.7)
    assert calls == []  # not while no code runs


def test_crash_in_a_launchers_account():
    console = watching(crash=["qemu: fatal:", "^QEMU exited with status"])
    assert console.crash_in("QEMU exited with status 0; QEMU said: ") == "QEMU exited with status"
    assert console.crash_in("QEMU was killed by signal 9 (SIGKILL); QEMU said: ") is None


def test_read_until_finds_a_split_marker_and_leaves_the_rest_for_the_next_expect():
    console = watching(b"OK12", b"3\x04", b"\x04>rest", crash=[])
    assert console.read_until(b"OK", 1.0) == b""
    assert console.read_until(b"\x04", 1.0) == b"123"
    assert console.read_until(b"\x04>", 1.0) == b""
    assert console.before == b"" and console.after == b"\x04>"
    console.expect_exact(b"st", timeout=1.0)
    assert console.before == b"re"


def test_read_until_timeout_keeps_everything_unconsumed():
    console = watching(b"partial ", b"output", crash=[])
    with pytest.raises(pexpect.TIMEOUT):
        console.read_until(b"\x04", 0.2)
    assert console.before == b"partial output"
    console.transport.chunks.append(b" and more\x04")
    assert console.read_until(b"\x04", 1.0) == b"partial output and more"


def test_a_crash_that_came_with_the_start_of_the_output_is_found_when_the_code_starts():
    console = watching(b"OKabout to fault\r\n" + DUMP)
    console.crash_watch = False  # waiting for "OK": the code has not started yet
    assert console.read_until(b"OK", 1.0) == b""
    with pytest.raises(BoardCrashed) as info:
        console.watch_crashes()
    assert info.value.output == "about to fault\n" and info.value.dump.endswith("xPSR: 21000000")


def test_what_came_before_the_code_started_is_never_a_crash():
    """A banner or dump already on the line before the code started (a late answer to an earlier
    command) is not the code's crash, even within the look-back for signatures split across reads."""
    console = watching(b"HardFault exception caught:\r\n>OK", b"fine\r\n\x04")
    console.crash_watch = False
    assert console.read_until(b"OK", 1.0) == b"HardFault exception caught:\r\n>"
    console.watch_crashes()
    assert console.read_until(b"\x04", 1.0) == b"fine\r\n"
    assert console.crashed is None
