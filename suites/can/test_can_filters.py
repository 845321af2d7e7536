"""Receive filters: exactly the matching frames arrive, nothing extra (linux
tools/testing/selftests/net/can/test_raw_filter.c, zephyr tests/drivers/can/api).

Filters are SocketCAN (can_id, can_mask) pairs on every path (hil_can.match() builds them). A
sentinel frame that only the sentinel filter passes marks the end of each exchange: frames
arrive in order, so when the sentinel is in, every frame sent before it has been judged."""

from __future__ import annotations

import errno

import pytest
from hilcan_host import SENTINEL, SENTINEL_CAN_ID, SENTINEL_FILTER

pytestmark = pytest.mark.requires("can")

EFF = 0x80000000
RTR = 0x40000000
SFF_MASK = 0x7FF
EFF_MASK = 0x1FFFFFFF
ID = 0x123


ALL4 = [0, RTR, EFF, EFF | RTR]

# test_raw_filter.c's variants: (name, filter id, filter mask, flags of the frames that pass)
RAW_FILTER_MATRIX = [
    ("base", ID, SFF_MASK, ALL4),
    ("base_eff", ID | EFF, SFF_MASK, ALL4),
    ("base_rtr", ID | RTR, SFF_MASK, ALL4),
    ("base_effrtr", ID | EFF | RTR, SFF_MASK, ALL4),
    ("filter_eff", ID, SFF_MASK | EFF, [0, RTR]),
    ("filter_eff_eff", ID | EFF, SFF_MASK | EFF, [EFF, EFF | RTR]),
    ("filter_eff_rtr", ID | RTR, SFF_MASK | EFF, [0, RTR]),
    ("filter_eff_effrtr", ID | EFF | RTR, SFF_MASK | EFF, [EFF, EFF | RTR]),
    ("filter_rtr", ID, SFF_MASK | RTR, [0, EFF]),
    ("filter_rtr_eff", ID | EFF, SFF_MASK | RTR, [0, EFF]),
    ("filter_rtr_rtr", ID | RTR, SFF_MASK | RTR, [RTR, EFF | RTR]),
    ("filter_rtr_effrtr", ID | EFF | RTR, SFF_MASK | RTR, [RTR, EFF | RTR]),
    ("filter_effrtr", ID, SFF_MASK | EFF | RTR, [0]),
    ("filter_effrtr_eff", ID | EFF, SFF_MASK | EFF | RTR, [EFF]),
    ("filter_effrtr_rtr", ID | RTR, SFF_MASK | EFF | RTR, [RTR]),
    ("filter_effrtr_effrtr", ID | EFF | RTR, SFF_MASK | EFF | RTR, [EFF | RTR]),
    ("eff", ID, EFF_MASK | EFF | RTR, [0]),
    ("eff_eff", ID | EFF, EFF_MASK | EFF | RTR, [EFF]),
]


def frame_with_flags(flags: int, testcase: int):
    ext, rtr = bool(flags & EFF), bool(flags & RTR)
    return (ID, ext, rtr, 1, b"" if rtr else bytes([testcase]))


def through_filters(canpair, filters, frames):
    """Set ``filters`` (plus the sentinel's) on the board, send ``frames`` and the sentinel;
    what the board received before the sentinel."""
    setup = f"bus.set_filters({[*filters, SENTINEL_FILTER]!r})"
    result = canpair.board_receives(
        lambda: canpair.send([*frames, SENTINEL]), len(frames) + 2, setup=setup, stop=SENTINEL_CAN_ID
    )
    return result.frames


@pytest.mark.parametrize("name, can_id, can_mask, passing", RAW_FILTER_MATRIX, ids=[v[0] for v in RAW_FILTER_MATRIX])
def test_raw_filter_matrix(canpair, name, can_id, can_mask, passing):
    testcase = [v[0] for v in RAW_FILTER_MATRIX].index(name) + 1
    sent = [frame_with_flags(flags, testcase) for flags in ALL4]  # SFF, SFF|RTR, EFF, EFF|RTR
    got = through_filters(canpair, [(can_id, can_mask)], sent)
    assert got == [frame_with_flags(flags, testcase) for flags in passing]


def std(i, data=b"\x01"):
    return (i, False, False, len(data), data)


def ext(i, data=b"\x02"):
    return (i, True, False, len(data), data)


def test_masked_standard_filter(canpair):
    # ids 0x120..0x12F, standard frames only (match() pins the id type)
    frames = [std(0x11F), std(0x120), std(0x125), std(0x12F), std(0x130), std(0x520), ext(0x120), ext(0x125)]
    got = through_filters(canpair, [(0x120 | 0, 0x7F0 | EFF)], frames)
    assert got == [std(0x120), std(0x125), std(0x12F)]


def test_masked_extended_filter(canpair):
    frames = [ext(0x1234500), ext(0x12345FF), ext(0x1234600), ext(0x0234500), std(0x500), ext(0x1234580)]
    got = through_filters(canpair, [(0x1234500 | EFF, 0x1FFFFF00 | EFF)], frames)
    assert got == [ext(0x1234500), ext(0x12345FF), ext(0x1234580)]


def test_filters_are_ored_and_match_once(canpair):
    rtr_0x200 = (0x200, False, True, 2, b"")
    frames = [std(0x100), (0x100, False, True, 0, b""), std(0x200), rtr_0x200, std(0x300), ext(0x300), std(0x400)]
    filters = [
        (0x100, SFF_MASK | EFF),  # 0x100 standard, data or remote
        (0x200 | RTR, SFF_MASK | EFF | RTR),  # 0x200 standard remote frames only
        (0x300 | EFF, EFF_MASK | EFF),  # 0x300 extended
        (0x100, 0x7F0 | EFF),  # overlaps the first: a frame matching two filters still arrives once
    ]
    got = through_filters(canpair, filters, frames)
    assert got == [std(0x100), (0x100, False, True, 0, b""), rtr_0x200, ext(0x300)]


def test_inverted_filter(canpair):
    # CAN_INV_FILTER (0x20000000 in the id): everything except standard 0x123
    frames = [std(0x123), std(0x124), ext(0x123)]
    got = through_filters(canpair, [(0x123 | 0x20000000, SFF_MASK | EFF)], frames)
    assert got == [std(0x124), ext(0x123)]


def test_match_helper_builds_socketcan_filters(dut):
    out = dut.eval(
        "import hil_can\n"
        "print(repr((hil_can.match(0x123), hil_can.match(0x1ABCDE, ext=True, rtr=False), "
        "hil_can.match(0x120, 0x7F0, rtr=True))))"
    )
    assert out == ((0x123, SFF_MASK | EFF), (0x1ABCDE | EFF, EFF_MASK | EFF | RTR), (0x120 | RTR, 0x7F0 | EFF | RTR))


def test_empty_filter_list_receives_nothing(canpair):
    # [] disables reception (machine.CAN.set_filters semantics); a late frame can only make this
    # pass, never fail, so the wait is no timing assertion
    result = canpair.board_receives(
        lambda: canpair.send([std(0x100), ext(0x100), (0x100, False, True, 1, b""), SENTINEL]),
        1,
        setup="bus.set_filters([])",
        timeout_ms=2000,
    )
    assert result.frames == []
    assert result.stats["rx"] == 0 and result.stats["overflow"] == 0


def test_filter_none_accepts_everything_again(canpair):
    frames = [std(0x100), ext(0x100), (0x100, False, True, 1, b""), std(0x7FF)]
    setup = "bus.set_filters([(0x1, 0x7FF | 0x80000000)])\nbus.set_filters(None)"
    result = canpair.board_receives_frames(frames, setup=setup)
    assert result.frames == frames


def test_all_filter_slots_usable_one_more_is_enospc(canpair):
    slots = canpair.dut.eval(f"import hil_can\nb = {canpair.opener()}\nn = b.backend.max_filters\nb.close()\nprint(n)")
    assert slots >= 2
    n = slots - 1  # plus the sentinel's filter: every slot in use
    filters = [(i, SFF_MASK | EFF) for i in range(n)]
    # one more than the slots: ENOSPC (MicroPython has no name for errno 28, so the board
    # prints it: its "(28, '...')" traceback line carries no "[Errno N]" for the host to parse)
    out = canpair.board_sends(
        "try:\n"
        f"    bus.set_filters([(i, 0x7FF | 0x80000000) for i in range({slots + 1})])\n"
        "except OSError as e:\n"
        "    print(e.errno, e.args[1])\n"
    )
    assert out == f"{errno.ENOSPC} {slots + 1} filters: {canpair_backend(canpair)} has {slots} filter slots\n"
    setup = f"bus.set_filters([(i, 0x7FF | 0x80000000) for i in range({n})] + [{SENTINEL_FILTER!r}])"
    result = canpair.board_receives(
        lambda: canpair.send([std(0), std(n - 1), std(n), std(0x7FF), SENTINEL]),
        6,
        setup=setup,
        stop=SENTINEL_CAN_ID,
    )
    assert filters[0][0] == 0 and result.frames == [std(0), std(n - 1)]


def canpair_backend(canpair) -> str:
    return canpair.dut.eval(f"import hil_can\nb = {canpair.opener()}\nn = b.name\nb.close()\nprint(repr(n))")
