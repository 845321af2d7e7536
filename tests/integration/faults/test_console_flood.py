"""A console that floods at full speed, for real: a process board whose program writes garbage to
its pty forever, and the native board running a print loop. The harness waits for a prompt that
never comes / for code that never ends; its RSS stays under 200 MiB, the console log under its
cap (head + ``--- hil: N bytes dropped ---`` + tail), and the failure is one line.

FLOOD_SECONDS (env HIL_FLOOD_SECONDS) is how long each flood lasts: 20 s by default to keep the
integration run short; the acceptance figure is for 60 s (HIL_FLOOD_SECONDS=60)."""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager

import pytest

from harness.board import Board
from harness.config.boards import find_board, load_board
from harness.errors import BootError
from harness.io.repl import ExecTimeout
from tests.conftest import REPO, write_target

FLOOD_SECONDS = float(os.environ.get("HIL_FLOOD_SECONDS", "20"))
RSS_LIMIT_MIB = 200
LOG_CAP_MIB = 4  # HIL_CONSOLE_LOG_MIB for these boards: the default (20) works the same, only slower to fill

GARBAGE = """\
import os
junk = bytes(i for i in range(256) if i not in (10, 13, 62)) * 64  # never a prompt
while True:
    os.write(1, junk)
"""


def rss_mib() -> float:
    for line in open("/proc/self/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@contextmanager
def rss_sampler():
    """Samples this process's VmRSS every 0.2 s; yields the list of samples (MiB)."""
    samples: list[float] = [rss_mib()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append(rss_mib())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def check_log(path) -> int:
    """The log is under its cap with head, one dropped marker and tail; returns the dropped count."""
    size = path.stat().st_size
    assert size <= LOG_CAP_MIB * 1024 * 1024, f"console log {size} bytes"
    markers = re.findall(rb"\n--- hil: (\d+) bytes dropped ---\n", path.read_bytes())
    assert len(markers) == 1
    return int(markers[0])


def test_board_flooding_garbage_never_gets_a_prompt(no_leftovers, tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_CONSOLE_LOG_MIB", str(LOG_CAP_MIB))
    (tmp_path / "garbage.py").write_text(GARBAGE)
    # SIGINT ignored from the start (the harness pokes with Ctrl-C; ignored stays ignored across exec)
    command = f"trap '' INT; exec {{venv_bin}}/python {tmp_path / 'garbage.py'}"
    spec = load_board(write_target(
        tmp_path, "flood",
        f'[launch]\nkind = "process"\ncommand = ["sh", "-c", "{command}"]\n'
        f"[console]\nboot_timeout = {FLOOD_SECONDS}\n",
    ))  # fmt: skip
    board = Board(spec, log_dir=tmp_path)
    started = time.monotonic()
    with rss_sampler() as samples, pytest.raises(BootError) as info:
        board.start()
    assert time.monotonic() - started < FLOOD_SECONDS + 10
    message = str(info.value)
    assert "\n" not in message and len(message) < 2000
    assert message.startswith(f"flood: no MicroPython prompt within {FLOOD_SECONDS:g} s (garbage on the line?")
    assert max(samples) < RSS_LIMIT_MIB, f"harness RSS peaked at {max(samples):.0f} MiB"
    dropped = check_log(board.console_log)
    assert dropped > 10 * LOG_CAP_MIB * 1024 * 1024  # it did flood: far more than the cap went by


def test_native_print_loop_past_its_timeout(no_leftovers, tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_CONSOLE_LOG_MIB", str(LOG_CAP_MIB))
    with Board(find_board("native", REPO / "targets"), log_dir=tmp_path) as board:
        with rss_sampler() as samples, pytest.raises(ExecTimeout) as info:
            board.exec("while True: print('x' * 1000)", timeout=FLOOD_SECONDS)
        assert "\n" not in str(info.value)
        assert max(samples) < RSS_LIMIT_MIB, f"harness RSS peaked at {max(samples):.0f} MiB"
        assert board.exec("print(1 + 1)") == "2\n"  # the board is usable again
    check_log(board.console_log)
