"""Smoke suite: the board boots real MicroPython, runs code, reports errors faithfully, resets
cleanly and keeps files. Runs on every board; capability-bound cases skip with a reason."""

from __future__ import annotations

import re
import zlib

import pytest

from harness.board import FirmwareExit
from harness.io.repl import BoardException, ExecTimeout
from harness.pytest.twins import board_app


def test_banner_names_micropython_and_version(board):
    # "MicroPython v1.25.0 on 2025-..; MPS2_AN385 with Cortex-M3" (a git build names its hash instead)
    banner = board.facts.banner
    assert re.match(r"MicroPython (v\d+\.\d+\S*|[0-9a-f]{7,}) on \d{4}-\d\d-\d\d", banner), banner
    assert board.facts.implementation == "micropython"
    major, minor = (int(x) for x in board.facts.version.split(".")[:2])
    assert (major, minor) >= (1, 9)
    if tagged := re.match(r"MicroPython v(\d+)\.(\d+)", board.facts.banner):
        assert board.facts.version.split(".")[:2] == list(tagged.groups())


def test_exec_returns_stdout(dut):
    assert dut.exec("print(6 * 7)") == "42\n"
    assert dut.exec("for i in range(3):\n    print(i)") == "0\n1\n2\n"


def test_eval_round_trips_values(dut):
    assert dut.eval("[1, 'two', (3, None), {'k': b'\\x00'}]") == [1, "two", (3, None), {"k": b"\x00"}]


def test_board_exception_propagates_with_traceback(dut):
    with pytest.raises(ValueError) as info:
        dut.exec("def f():\n    raise ValueError('boom %d' % 42)\nf()")
    assert isinstance(info.value, BoardException)
    assert info.value.message == "ValueError: boom 42"
    assert "Traceback" in info.value.board_traceback and "line 2" in info.value.board_traceback


def test_oserror_carries_errno(dut):
    with pytest.raises(OSError) as info:
        dut.exec("raise OSError(5)")
    assert info.value.errno == 5


def test_syntax_error_is_reported_not_run(dut):
    with pytest.raises(SyntaxError):
        dut.exec("print('never'")
    assert dut.exec("print('still alive')") == "still alive\n"


def test_output_is_complete_and_ordered(dut):
    out = dut.exec("for i in range(200):\n    print('%04d' % i, 'x' * 40)")
    lines = out.splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(200))
    assert all(line.endswith("x" * 40) for line in lines)


def test_large_script_arrives_intact(dut):
    # ~1.5 KB of source: crosses raw-paste windows and paced-write chunks; fits a 10 KB heap.
    body = "".join(f"t += {i} # {'pad' * 6}\n" for i in range(50))
    assert dut.exec("t = 0\n" + body + "print(t)") == f"{sum(range(50))}\n"


def test_heap_info(dut):
    free, alloc = dut.eval("(__import__('gc').mem_free(), __import__('gc').mem_alloc())")
    assert free > 0 and alloc > 0
    declared = dut.spec.capabilities.heap_kb * 1024
    if declared:
        assert 0.5 * declared <= free + alloc <= 4 * declared, (free, alloc, declared)


def test_soft_reset_clears_interpreter_state(dut):
    dut.exec("hil_marker = 123")
    assert dut.eval("hil_marker") == 123
    dut.soft_reset()
    with pytest.raises(NameError):
        dut.exec("hil_marker")


@pytest.mark.requires("firmware_py")
def test_firmware_py_module_runs_on_board(dut):
    assert dut.eval("__import__('hil_info').echo((1, 'a'))") == (1, "a")
    info = dut.eval("__import__('hil_info').info()")
    assert info["impl"] == "micropython"


def test_runaway_code_is_interrupted(dut):
    with pytest.raises(ExecTimeout):
        dut.exec("while True:\n    pass", timeout=1.0)
    assert dut.exec("print('recovered')") == "recovered\n"


@pytest.fixture
def fs_app() -> str:
    """The board's file helper module. HIL_FS_APP=hil_fs_sector points the case at a broken twin
    that writes whole 512-byte sectors only (tests/integration/test_suite_smoke.py)."""
    return board_app("HIL_FS_APP", "hil_fs")


# Off a sector boundary on both sides, never on it: a file of exactly 512 bytes lets an
# off-by-a-sector bug through. The file goes in pieces, one exec each, and comes back the same way:
# a piece's literal (~4 characters a byte) fits a 10 KB heap, the whole 4097 bytes' would not.
FILE_PIECE = 256


@pytest.mark.requires("fs")
@pytest.mark.parametrize("size", [1, 511, 513, 4097])
def test_file_round_trip(dut, fs_app, size):
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    dut.exec(f"hil_w = __import__({fs_app!r}).writer('hil_t.bin')")
    for i in range(0, size, FILE_PIECE):
        dut.exec(f"hil_w.write({data[i : i + FILE_PIECE]!r})")
    dut.exec("hil_w.close()")
    length, crc = dut.eval(f"__import__({fs_app!r}).check('hil_t.bin')")
    assert (length, crc) == (len(data), zlib.crc32(data)), f"{size}-byte file read back as {length} bytes"
    dut.exec("hil_r = open('hil_t.bin', 'rb')")
    back = b""
    while piece := dut.eval(f"hil_r.read({FILE_PIECE})"):
        back += piece
    dut.exec("hil_r.close()\nimport os\nos.remove('hil_t.bin')")
    assert back == data


@pytest.mark.requires("asm_thumb", "semihosting")  # hil_semihost's bkpt, and a QEMU that answers it
def test_semihosting_exit_status_maps_to_a_verdict(dut):
    # The firmware ends QEMU through semihosting: status 0 is a pass, anything else a failure.
    assert dut.run_to_exit("import hil_semihost\nhil_semihost.exit(0)") == 0
    with pytest.raises(FirmwareExit) as info:
        dut.run_to_exit("import hil_semihost\nhil_semihost.exit(3)")
    assert info.value.status == 3
    assert dut.exec("print('rebooted')") == "rebooted\n"  # the harness booted it again
