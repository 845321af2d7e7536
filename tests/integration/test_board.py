"""Board lifecycle on real boards, and every way a board can fail to become usable."""

from __future__ import annotations

import os
import signal

import pytest

from harness.board import Board
from harness.config.boards import find_board, load_board
from harness.errors import BoardDied, BootError
from harness.net.boardnet import BoardNet
from tests.conftest import REPO, write_target


def test_native_board_lifecycle(no_leftovers, tmp_path):
    board = Board(find_board("native", REPO / "targets"), log_dir=tmp_path)
    with board:
        assert board.facts.implementation == "micropython"
        assert board.exec("print('hi')") == "hi\n"
        workdir = board.workdir
        assert workdir.exists()
    assert not workdir.exists()
    log = board.console_log.read_text(errors="replace")
    assert "hi" in log and "--- hil" in log



def test_native_soft_reset_hands_over_to_a_fresh_spare(no_leftovers, tmp_path):
    """native keeps a warm spare (targets/native.toml spare = true): after a soft reset the code
    runs in another process, with none of the last test's globals, modules or files open."""
    with Board(find_board("native", REPO / "targets"), log_dir=tmp_path) as board:
        board.exec("import sys\nleak = 42\nsys.modules['hil_leak'] = sys\nf = open('kept.txt', 'w')")
        before = board.launcher.proc.pid
        for _ in range(3):
            board.soft_reset()
            state = board.exec("import sys\nprint('leak' in globals(), 'hil_leak' in sys.modules)")
            assert board.launcher.proc.pid != before and state == "False False\n", state
            before = board.launcher.proc.pid
        assert board.exec("print(1 + 1)") == "2\n"
    log = board.console_log.read_text(errors="replace")
    assert log.count("MicroPython") >= 4  # each process's banner is in the one console log

def test_qemu_killed_mid_use_is_board_died(no_leftovers, tmp_path):
    board = Board(find_board("microbit", REPO / "targets"), log_dir=tmp_path)
    with board:
        assert board.exec("print(1)") == "1\n"
        os.kill(board.launcher.proc.pid, signal.SIGKILL)
        with pytest.raises(BoardDied, match=r"microbit: QEMU was killed by signal 9"):
            board.exec("print(2)")












def test_qemu_that_refuses_its_arguments(no_leftovers, tmp_path):
    spec = load_board(write_target(tmp_path, "q", '[launch]\nkind = "qemu"\nbinary = "qemu-system-arm"\n'
                                   'machine = "no-such-machine"\n'))
    with pytest.raises(BootError, match=r"q: QEMU exited with status 1 at start: .*unsupported machine type"):
        Board(spec, log_dir=tmp_path).start()




# --- boards with their own IP stack (mps2_an385: lwIP on the LAN9118, brought up over the REPL) ---

def test_no_dhcp_lease_is_a_boot_error(no_leftovers, tmp_path, monkeypatch):
    """A real fault: on a tap segment nobody serves DHCP, so a board told to use DHCP there (not
    the segment's static address) gets no lease; its firmware's OSError becomes a BootError."""
    monkeypatch.setattr(BoardNet, "static_address", lambda self: None)
    board = Board(find_board("mps2_an385_tap", REPO / "targets"), log_dir=tmp_path, log=lambda m: None)
    with pytest.raises(BootError) as info:
        board.start()
    message = str(info.value)
    assert message.startswith("mps2_an385_tap: network did not come up: OSError: no DHCP lease after 10000 ms")
    assert "console tail:" in message and "\n" not in message  # one line: the board's traceback is in the tail


