"""CAN traffic: silence when nothing is sent, order under bursts, canfdtest's echo of thousands of
frames, receive-queue overflow reported, open/close without leaks, timestamps that never go
back (can-utils canfdtest.c, python-can test/back2back_test.py, zephyr tests/drivers/can/api)."""

from __future__ import annotations

import ast
import errno
import itertools

import pytest
from hilcan_host import (
    ECHO_FRAMES,
    SENTINEL_SEND,
    board_echo_code,
    canfdtest_host,
    lost_counters,
    parse_board_output,
    to_tuple,
)

pytestmark = pytest.mark.requires("can")

BURST = 500


def seq_frame(n: int, ext: bool = False):
    ident = (0x400 + n % 0x100) | (0x1000000 if ext else 0)
    return (ident, ext, False, 4, n.to_bytes(4, "big"))


def test_no_frame_when_none_sent(canpair):
    # the board's receive times out (returns None, no earlier than asked: a lower bound, which
    # load cannot break), and the host hears nothing from a board that sends nothing but the
    # closing sentinel
    out = canpair.board_sends(
        "t0 = hil_can.ticks_ms()\n"
        "f = bus.recv(400)\n"
        "waited = hil_can.ticks_diff(hil_can.ticks_ms(), t0)\n"
        "print(repr((f, bus.any(), waited >= 400, bus.stats()['rx'])))\n",
        sentinel=True,
    )
    assert out.strip() == "(None, 0, True, 0)"
    assert canpair.host_receives_until_sentinel() == []


def test_burst_order_host_to_board(canpair):
    frames = [seq_frame(n, ext=n % 3 == 0) for n in range(BURST)]
    result = canpair.board_receives_frames(frames, timeout_ms=60000)
    assert len(result.frames) == BURST, f"{BURST - len(result.frames)} of {BURST} frames lost"
    assert result.frames == frames  # none lost, duplicated or reordered
    assert lost_counters(result.stats) is None, lost_counters(result.stats)


def test_burst_order_board_to_host(canpair):
    out = canpair.board_sends(
        f"for n in range({BURST}):\n"
        "    bus.send(0x400 + n % 0x100 | (0x1000000 if n % 3 == 0 else 0), n.to_bytes(4, 'big'), ext=n % 3 == 0)\n"
        "print(bus.stats()['tx'])\n",
        timeout=60,
        sentinel=True,
    )
    assert out.strip() == str(BURST)
    got = [to_tuple(m) for m in canpair.host_receives_until_sentinel(timeout=20)]
    assert len(got) == BURST, f"{BURST - len(got)} of {BURST} frames lost"
    assert got == [seq_frame(n, ext=n % 3 == 0) for n in range(BURST)]


def test_canfdtest_echo(canpair, echo_app):
    """canfdtest -g against the board's echo app: thousands of frames, 50 in flight, every reply
    id + 1 and bytes + 1, none lost, duplicated or reordered."""
    running = canpair.dut.spawn(board_echo_code(canpair.opener(rx_queue=128), echo_app, ECHO_FRAMES, 3000))
    running.wait_for("READY", timeout=30)
    try:
        problem = canfdtest_host(canpair.bus, ECHO_FRAMES)
    finally:
        # the app ends after ECHO_FRAMES frames, or 3 s after the host stopped sending
        result = parse_board_output(running.finish(timeout=120))
    problems = [p for p in (lost_counters(result.stats), problem) if p]  # the board's counters first
    assert not problems, "; ".join(problems)
    assert result.lines == [f"ECHOED {ECHO_FRAMES} {ECHO_FRAMES}"]


def test_receive_queue_overflow_reported(canpair):
    # an 8-frame receive queue nobody reads while 30 frames come in: the first 8 are kept, the
    # 22 that found it full are counted as overflow; afterwards reception works again
    frames = [seq_frame(n) for n in range(30)]
    running = canpair.dut.spawn(
        f"import hil_can\nbus = {canpair.opener(rx_queue=8)}\nprint('READY')\n"
        "t0 = hil_can.ticks_ms()\n"
        "while bus.any() + bus.overflows < 30 and hil_can.ticks_diff(hil_can.ticks_ms(), t0) < 30000:\n"
        "    pass\n"
        "print('STATS', repr(bus.stats()))\n"
        "print('RESULT', repr([f.t() for f in hil_can.collect(bus, 8, 1000)]))\n"
        "print('AGAIN')\n"
        "f = bus.recv(15000)\n"
        "print('AFTER', repr(f and f.t()))\n"
        "bus.close()\n"
    )
    running.wait_for("READY", timeout=30)
    canpair.send(frames)
    running.wait_for("AGAIN", timeout=60)
    canpair.send([seq_frame(99)])
    out = running.finish(timeout=60)
    result = parse_board_output(out)
    assert result.stats["overflow"] == 22 and result.stats["queued"] == 8 and result.stats["rx"] == 8
    assert result.frames == frames[:8]
    assert f"AFTER {seq_frame(99)!r}" in out.splitlines()


def test_reopen_close_without_leaks(canpair):
    # 200 open/send/close cycles: every bus works (the host gets all 200 frames, in order), no
    # file descriptor stays open and the heap does not grow
    out = canpair.dut.exec(
        "import hil_can, gc, os\n"
        "def fds():\n"
        "    try:\n"
        "        return len(os.listdir('/proc/self/fd'))\n"
        "    except OSError:\n"
        "        return -1\n"
        f"hil_can.open({canpair.open_args}).close()\n"
        "gc.collect()\n"
        "f0, m0 = fds(), gc.mem_alloc()\n"
        "for i in range(200):\n"
        f"    bus = hil_can.open({canpair.open_args})\n"
        "    bus.send(0x300, bytes([i]))\n"
        "    bus.close()\n"
        f"bus = hil_can.open({canpair.open_args})\n"
        f"{SENTINEL_SEND}\n"
        "bus.close()\n"
        "bus = None\n"
        "gc.collect()\n"
        "print(repr((f0 == fds(), gc.mem_alloc() - m0)))\n",
        timeout=120,
    )
    same_fds, grown = ast.literal_eval(out)
    assert same_fds
    assert grown < 2048, f"heap grew by {grown} bytes over 200 open/close cycles"
    got = [to_tuple(m) for m in canpair.host_receives_until_sentinel(timeout=20)]
    assert got == [(0x300, False, False, 1, bytes([i])) for i in range(200)]


def test_close_drops_unread_and_rejects_use(canpair):
    # frames left unread at close() are gone for the next bus; a closed bus says EBADF
    running = canpair.dut.spawn(
        f"import hil_can\nbus = {canpair.opener()}\nprint('READY')\n"
        "t0 = hil_can.ticks_ms()\n"
        "while bus.any() < 3 and hil_can.ticks_diff(hil_can.ticks_ms(), t0) < 30000:\n"
        "    pass\n"
        "print('HAD', bus.any())\n"
        "bus.close()\n"
        "bus.close()\n"
        "for call in (lambda: bus.send(1, b''), lambda: bus.recv(0), lambda: bus.any()):\n"
        "    try:\n"
        "        call()\n"
        "    except OSError as e:\n"
        "        print('CLOSED', e.errno, e.args[1])\n"
        f"bus = {canpair.opener()}\nprint('READY2')\n"
        "print('RESULT', repr([f.t() for f in hil_can.collect(bus, 4, 15000, 2000)]))\n"
        "bus.close()\n"
    )
    running.wait_for("READY", timeout=30)
    canpair.send([seq_frame(1), seq_frame(2), seq_frame(3)])
    running.wait_for("READY2", timeout=60)
    canpair.send([seq_frame(4)])
    out = running.finish(timeout=60)
    assert [ln for ln in out.splitlines() if ln.startswith(("HAD", "CLOSED"))] == [
        "HAD 3",
        *[f"CLOSED {errno.EBADF} CAN bus is closed"] * 3,
    ]
    assert parse_board_output(out).frames == [seq_frame(4)]


def test_board_timestamps_monotonic(canpair):
    # receive timestamps (ticks_us) never go back within a burst, and a frame sent only after
    # the board reported the previous one is strictly later
    frames = [seq_frame(n) for n in range(50)]
    running = canpair.dut.spawn(
        f"import hil_can\nbus = {canpair.opener()}\nprint('READY')\n"
        "got = hil_can.collect(bus, 50, 30000)\n"
        "print('BURST', len(got), [hil_can.ticks_diff(b.ts, a.ts) >= 0 for a, b in zip(got, got[1:])].count(False))\n"
        "last = got[-1]\n"
        "print('NEXT')\n"
        "f = bus.recv(30000)\n"
        "print('LATER', f is not None and hil_can.ticks_diff(f.ts, last.ts) > 0,"
        " f is not None and hil_can.ticks_diff(hil_can.ticks_us(), f.ts) >= 0)\n"
        "bus.close()\n"
    )
    running.wait_for("READY", timeout=30)
    canpair.send(frames)
    running.wait_for("NEXT", timeout=60)
    canpair.send([seq_frame(50)])
    lines = running.finish(timeout=60).splitlines()
    assert "BURST 50 0" in lines  # 50 frames, no step backwards
    assert "LATER True True" in lines  # later than the burst, not in the future


def test_host_timestamps_monotonic(canpair):
    canpair.board_sends("for n in range(100):\n    bus.send(0x200, bytes([n]))\n", sentinel=True)
    got = canpair.host_receives_until_sentinel(timeout=20)
    assert [bytes(m.data) for m in got] == [bytes([n]) for n in range(100)]
    stamps = [m.timestamp for m in got]
    assert all(b >= a for a, b in itertools.pairwise(stamps)), stamps
