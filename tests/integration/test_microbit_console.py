"""The micro:bit's console under load: its UART keeps 63 received bytes and drops the rest, and
MicroPython 1.9.2 has no raw-paste, so the harness sends long code through firmware_py/hil_paste.py,
which acknowledges what it has taken (targets/microbit.toml rx_buffer, ack_module, ack_every).
With the machine loaded (spinning processes and a second busy micro:bit QEMU, all killed afterwards),
30 KB of code goes through exec and the board's CRC-32 of every piece equals the host's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import zlib

from harness.board import Board
from harness.config.boards import find_board
from tests.conftest import REPO

# execs of ~700 bytes of source each, over 30 KB in all: each piece is ten times the UART's buffer
# (so it goes through the acknowledged receiver), and small enough that the ~6.7 KB the micro:bit
# has free after hil_fs and hil_paste holds its text and its compilation; with ~1 KB pieces the
# board ran out of memory in 2 of 5 runs, which is not what this test is about
PIECES = 48
RAW_BYTES = 220  # random bytes per piece; their repr is ~3 characters a byte


def spinning(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def test_30_kb_of_code_arrives_intact_under_load(no_leftovers, tmp_path):
    rng = random.Random(15)
    spec = find_board("microbit", REPO / "targets")
    assert spec.console.ack_module and spec.console.rx_buffer <= 63  # what this test is about
    procs: list[subprocess.Popen] = []
    with Board(spec, log_dir=tmp_path / "dut") as board, Board(spec, log_dir=tmp_path / "load") as other:
        other.repl.spawn("while True:\n    pass")  # a second guest burning its CPU alongside
        procs = spinning(3)
        try:
            board.exec("import hil_fs")
            sent, started = 0, time.monotonic()
            for i in range(PIECES):
                data = bytes(rng.randrange(256) for _ in range(RAW_BYTES))
                code = f"d = {data!r}\nprint(len(d), hil_fs.crc32(d))"
                sent += len(code)
                assert board.exec(code, timeout=20) == f"{len(data)} {zlib.crc32(data)}\n", f"piece {i} corrupted"
            elapsed = time.monotonic() - started
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert sent >= 30_000, sent
    print(f"{sent} bytes of code in {elapsed:.1f} s under load")
