"""Boot to ready of QEMU boards, and what the console chardev costs, back to back in one run.

    .venv/bin/python bench/bench_boot.py [--board mps2_an385 ...] [--rounds N]

Per board, medians of N rounds:
- ready: ``Board.start()`` from launch to a board in raw REPL with its facts read (and its network
  up, on a board that configures one): what every boot, retry and restart pays;
- restart: ``Board.restart()`` (stop + boot), what a test pays after runaway code or a crash;
- first prompt, QEMU's pty / harness pty: the same machine with ``-serial pty`` (QEMU's own pty
  chardev, what the harness used before) or with the pty the harness makes
  (harness/launch/qemu/hostpty.py), console opened once QMP answers (as the launcher does) and
  poked until the first ``>>>``. QEMU notices a reader of its pty only on a 1 s timer or when the
  guest writes: whether the firmware's banner comes before or after the open is a race, so
  this column varies from round to round (median and worst shown);
- answer after open, booted board: the console opened 0.5 s after start, once the firmware sits
  at its prompt (as after a snapshot restore, or a host slower than the firmware), timed from the
  open to the first answer: QEMU's pty waits for its timer, the harness's pty answers at once.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import time

import serial

from harness import procs
from harness.board import Board
from harness.config.boards import find_board
from harness.launch.qemu.cmdline import machine_command
from harness.launch.qemu.hostpty import HostPty
from harness.launch.qemu.qmp import Qmp

DEFAULT_BOARDS = ["mps2_an385", "microbit"]
_PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


def _poke_until_prompt(port: serial.Serial, started: float, timeout: float = 20.0) -> float:
    seen = b""
    while time.monotonic() - started < timeout:
        port.write(b"\r\x03")
        seen += port.read(4096)
        if b">>> " in seen:
            return time.monotonic() - started
    raise SystemExit(f"bench: no prompt within {timeout:g} s; got {seen[-200:]!r}")


def first_prompt(board: Board, qemu_pty: bool, settle: float = 0.0) -> float:
    """Spawn the board's machine (no network, no CAN: just the console and QMP) and time the first
    prompt, opening the console once QMP answers, as the launcher does."""
    assert board.image is not None
    cmd = machine_command(board.spec, board.image.files, board.workdir)
    pty = None if qemu_pty else HostPty.open()
    cmd += ["-serial", "pty"] if qemu_pty else pty.qemu_args()
    qmp_path = board.workdir / "bench-qmp.sock"
    qmp_path.unlink(missing_ok=True)
    cmd += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
    started = time.monotonic()
    proc = procs.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       pass_fds=pty.pass_fds if pty else ())  # fmt: skip
    try:
        if pty:
            pty.handed_over()
            path = pty.path
        else:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            m = _PTY_LINE.search(line)
            if not m:
                raise SystemExit(f"bench: QEMU did not report its pty: {line!r}")
            path = m.group(1).decode()
        # the launcher's order: QEMU's monitor answers (QEMU is initialised), then the console opens
        Qmp(qmp_path, timeout=15, alive=lambda: proc.poll() is None).close()
        if settle:
            time.sleep(settle)
            started = time.monotonic()
        port = serial.Serial(path, 115200, timeout=0.02, exclusive=True)
        try:
            return _poke_until_prompt(port, started)
        finally:
            port.close()
    finally:
        procs.kill(proc)
        if pty:
            pty.close()


def bench_board(name: str, rounds: int) -> dict[str, float]:
    spec = find_board(name)
    board = Board(spec, log=lambda m: None)
    board.build()
    ready, restart, qemu_pty, host_pty, qemu_late, host_late = [], [], [], [], [], []
    try:
        for _ in range(rounds):
            t = time.monotonic()
            board.start()
            ready.append(time.monotonic() - t)
            t = time.monotonic()
            board.restart()
            restart.append(time.monotonic() - t)
            board._shutdown()
            qemu_pty.append(first_prompt(board, qemu_pty=True))
            host_pty.append(first_prompt(board, qemu_pty=False))
            qemu_late.append(first_prompt(board, qemu_pty=True, settle=0.5))
            host_late.append(first_prompt(board, qemu_pty=False, settle=0.5))
    finally:
        board.stop()
    samples = {"ready": ready, "restart": restart, "qemu_pty": qemu_pty, "host_pty": host_pty,
               "qemu_late": qemu_late, "host_late": host_late}  # fmt: skip
    return {k: statistics.median(v) * 1000 for k, v in samples.items()} | {
        f"{k}_max": max(v) * 1000 for k, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None, help=f"default: {' '.join(DEFAULT_BOARDS)}")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"boot to ready, median of {args.rounds} rounds; {os.cpu_count()} CPUs, load average {load}")
    print(f"{'':<12} {'ready':>7} {'restart':>8} | {'first prompt (median/worst)':^29} | "
          f"{'answer after open, booted':^27}")  # fmt: skip
    print(f"{'board':<12} {'ms':>7} {'ms':>8} | {'QEMU pty':>14} {'harness pty':>14} | "
          f"{'QEMU pty':>9} {'harness pty':>11} {'ratio':>5}")  # fmt: skip
    for name in args.board or DEFAULT_BOARDS:
        r = bench_board(name, args.rounds)
        print(f"{name:<12} {r['ready']:7.0f} {r['restart']:8.0f} | {r['qemu_pty']:6.0f}/{r['qemu_pty_max']:<7.0f} "
              f"{r['host_pty']:6.0f}/{r['host_pty_max']:<7.0f} | {r['qemu_late']:9.0f} {r['host_late']:11.0f} "
              f"{r['qemu_late'] / r['host_late']:4.0f}x", flush=True)  # fmt: skip
    print(f"load average after: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
