"""Random mixed frames, seeded (the seed is printed; HIL_CAN_SEED replays a run): standard and
extended ids, remote frames, DLC 0-8, and CAN FD where the link carries it. One way each, through
the board's echo app, and a soak of 10,000 unpaced (the link's maximum rate; the flow-controlled
echo rate is measured first and printed; bench/bench_can.py --soak also paces a soak at it).

A case fails when a frame is lost, duplicated, reordered or altered (the first difference is named),
and when any of the board's loss counters is not 0 (hil_can's stats()["lost"]: the counter is named,
e.g. sock_rxq_drops, the SocketCAN socket's receive-queue drops). An echo that drops the RTR flag or
cuts extended ids to 11 bits fails here, though the canfdtest echo (standard-id data frames) passes it."""

from __future__ import annotations

import binascii

import pytest
from hilcan_host import (
    SENTINEL,
    SENTINEL_CAN_ID,
    SOAK_FRAMES,
    WINDOW,
    echo_phases,
    first_difference,
    full_message,
    lost_counters,
    mixed_frames,
    pack_full,
    parse_board_output,
    to_full,
    unpack_full,
)

pytestmark = pytest.mark.requires("can")

ONE_WAY = 300  # frames per one-way case
ECHO = 1000  # frames through the echo app, flow-controlled
CALIBRATE = 1000  # flow-controlled frames before the soak: the board's sustained echo rate
SOAK = SOAK_FRAMES


def verdict(rng, expected, got, stats, what="frame") -> str | None:
    """None when nothing was lost, duplicated, reordered or altered and no loss counter moved."""
    problems = [p for p in (lost_counters(stats), first_difference(expected, got, what)) if p]
    return f"{'; '.join(problems)} (replay: HIL_CAN_SEED={rng.seed_value})" if problems else None


def test_mixed_frames_host_to_board(canpair, can_rng, link_fd):
    frames = mixed_frames(can_rng, ONE_WAY, fd=link_fd)

    def send():
        for frame in frames:
            canpair.bus.send(full_message(frame), timeout=5)
        canpair.send([SENTINEL])

    result = canpair.board_receives(send, ONE_WAY + 100, open_kw={"fd": link_fd}, stop=SENTINEL_CAN_ID)
    problem = verdict(can_rng, frames, unpack_full(result.packed), result.stats)
    assert problem is None, problem


def test_mixed_frames_board_to_host(canpair, can_rng, link_fd):
    frames = mixed_frames(can_rng, ONE_WAY, fd=link_fd)
    packed = binascii.hexlify(pack_full(frames)).decode()
    out = canpair.board_sends(
        f"for f in hil_can.unpack(__import__('binascii').unhexlify({packed!r})):\n"
        "    bus.send_frame(f)\n"
        "print('STATS', repr(bus.stats()))\n",
        open_kw={"fd": link_fd},
        timeout=60,
        sentinel=True,
    )
    got = [to_full(m) for m in canpair.host_receives_until_sentinel(timeout=20)]
    problem = verdict(can_rng, frames, got, parse_board_output(out).stats)
    assert problem is None, problem


def run_echo(canpair, echo_app, rng, phases, fd) -> list:
    """hilcan_host.echo_phases(), failing with every problem and the seed; the phases' runs."""
    done = echo_phases(canpair.dut, canpair.bus, canpair.opener(rx_queue=256, fd=fd), echo_app, phases)
    assert not done.problems, f"{'; '.join(done.problems)} (replay: HIL_CAN_SEED={rng.seed_value})"
    return done.runs


def test_mixed_echo(canpair, echo_app, can_rng, link_fd):
    """The echo app answers every kind of frame, flags, id width and DLC kept, in order."""
    frames = mixed_frames(can_rng, ECHO, fd=link_fd)
    run_echo(canpair, echo_app, can_rng, [(frames, {"window": WINDOW})], link_fd)


def test_mixed_soak_at_max_rate(canpair, echo_app, can_rng, link_fd):
    """10,000 mixed frames through the echo app, unpaced: as fast as the host's end of the link
    takes them, the link's maximum rate (mps2_an385's UART back-pressures; on qemu_x86 the
    socket's receive queue holds the burst while the board catches up). Nothing lost, duplicated,
    reordered or altered, and every loss counter on the board 0. The rate the board sustains with
    canfdtest's flow control is measured first (1,000 frames) and printed with the soak's;
    bench/bench_can.py --soak repeats this, paced at that measured rate and unpaced."""
    calibrate = mixed_frames(can_rng, CALIBRATE, fd=link_fd)
    soak = mixed_frames(can_rng, SOAK, fd=link_fd)
    calibrated, soaked = run_echo(canpair, echo_app, can_rng, [(calibrate, {"window": WINDOW}), (soak, {})], link_fd)
    print(f"flow-controlled echo {calibrated.rate():.0f} frames/s; soak of {SOAK} unpaced: sent in "
          f"{soaked.send_s:.1f} s, echoed after {soaked.total_s:.1f} s ({soaked.rate():.0f} frames/s)")  # fmt: skip
