"""CAN frames both ways: standard and extended ids, remote frames, every DLC, and invalid frames
rejected (python-can test/back2back_test.py, zephyr tests/drivers/can/api)."""

from __future__ import annotations

import errno

import pytest
from hilcan_host import SENTINEL, SENTINEL_CAN_ID, to_tuple

from harness.io.repl import BoardException

pytestmark = pytest.mark.requires("can")

STD_IDS = [0x000, 0x001, 0x123, 0x555, 0x7FE, 0x7FF]
EXT_IDS = [0x00000000, 0x00000123, 0x00000800, 0x0ABCDEF0, 0x15555555, 0x1FFFFFFF]


def ext_frames() -> list:
    # 0x123 standard and 0x123 extended are different frames: both must arrive as sent
    return [(i, True, False, 2, bytes([n, 0xE0 | n])) for n, i in enumerate(EXT_IDS)] + [(0x123, False, False, 1, b"s")]


def board_send_lines(frames) -> str:
    return "\n".join(
        f"bus.send({i:#x}, rtr=True, dlc={dlc}, ext={ext})" if rtr else f"bus.send({i:#x}, {data!r}, ext={ext})"
        for i, ext, rtr, dlc, data in frames
    )


def test_standard_ids_host_to_board(canpair):
    frames = [(i, False, False, 3, bytes([n, i & 0xFF, i >> 8])) for n, i in enumerate(STD_IDS)]
    result = canpair.board_receives_frames(frames)
    assert result.frames == frames


def test_standard_ids_board_to_host(canpair):
    frames = [(i, False, False, 3, bytes([n, i & 0xFF, i >> 8])) for n, i in enumerate(STD_IDS)]
    canpair.board_sends(board_send_lines(frames), sentinel=True)
    assert [to_tuple(m) for m in canpair.host_receives_until_sentinel()] == frames


def test_extended_ids_host_to_board(canpair):
    frames = ext_frames()
    result = canpair.board_receives_frames(frames)
    assert result.frames == frames


def test_extended_ids_board_to_host(canpair):
    frames = ext_frames()
    canpair.board_sends(board_send_lines(frames), sentinel=True)
    assert [to_tuple(m) for m in canpair.host_receives_until_sentinel()] == frames


RTR_FRAMES = [(0x123, False, True, 0, b""), (0x7FF, False, True, 1, b""), (0x001, False, True, 8, b""),
              (0x1ABCDEF, True, True, 4, b""), (0x0, True, True, 0, b""), (0x1FFFFFFF, True, True, 8, b"")]  # fmt: skip


def test_remote_frames_host_to_board(canpair):
    # a remote request carries a DLC and no data: both ends must keep the DLC, and a data
    # frame with the same id stays a data frame
    frames = [*RTR_FRAMES, (0x123, False, False, 2, b"\x00\x00")]
    result = canpair.board_receives_frames(frames)
    assert result.frames == frames


def test_remote_frames_board_to_host(canpair):
    frames = [*RTR_FRAMES, (0x123, False, False, 2, b"\x00\x00")]
    canpair.board_sends(board_send_lines(frames), sentinel=True)
    assert [to_tuple(m) for m in canpair.host_receives_until_sentinel()] == frames


def dlc_frames(ext: bool):
    return [(0x100 + n, ext, False, n, bytes((0xA0 + n + k) & 0xFF for k in range(n))) for n in range(9)]


def test_every_dlc_host_to_board(canpair):
    frames = dlc_frames(False) + dlc_frames(True)
    result = canpair.board_receives_frames(frames)
    assert result.frames == frames


def test_every_dlc_board_to_host(canpair):
    frames = dlc_frames(False) + dlc_frames(True)
    canpair.board_sends(board_send_lines(frames), sentinel=True)
    assert [to_tuple(m) for m in canpair.host_receives_until_sentinel()] == frames


def test_invalid_dlc_rejected_on_send(canpair):
    # 9 data bytes, or a remote request with DLC 9: EINVAL with the reason, and nothing on the
    # bus (the valid frame sent afterwards is the first and only one the host sees)
    out = canpair.board_sends(
        "for kw in ({'data': bytes(9)}, {'rtr': True, 'dlc': 9}, {'data': bytes(2), 'dlc': 3}):\n"
        "    try:\n"
        "        bus.send(0x321, **kw)\n"
        "        print('SENT', kw)\n"
        "    except OSError as e:\n"
        "        print('REJECTED', e.errno, e.args[1])\n"
        "bus.send(0x321, b'ok')\n"
        "print('TX', bus.stats()['tx'])\n",
        sentinel=True,
    )
    assert out.splitlines() == [
        f"REJECTED {errno.EINVAL} DLC 9 out of range: classic CAN carries 0..8 data bytes",
        f"REJECTED {errno.EINVAL} DLC 9 out of range: classic CAN DLC is 0..8",
        f"REJECTED {errno.EINVAL} DLC 3 does not match 2 data bytes",
        "TX 1",
    ]
    assert [to_tuple(m) for m in canpair.host_receives_until_sentinel()] == [(0x321, False, False, 2, b"ok")]


def test_kernel_rejects_dlc_9_with_einval(canpair):
    # below hil_can: a raw can_frame with can_dlc 9 written to the AF_CAN socket -> EINVAL
    backend = canpair.dut.eval("__import__('hil_can').backends()[0]")
    if backend != "socketcan":
        pytest.skip(f"{backend}: no kernel CAN stack below hil_can on this path")
    with pytest.raises(OSError) as info:
        canpair.board_sends("import struct\nbus.backend.sock.send(struct.pack('<IB3x8s', 0x123, 9, bytes(8)))")
    assert info.value.errno == errno.EINVAL
    canpair.board_sends("", sentinel=True)
    assert canpair.host_receives_until_sentinel() == []  # nothing went out before the sentinel


def test_invalid_dlc_on_the_wire_is_dropped(canpair):
    # an SLCAN line announcing DLC 9 (with 9 bytes) never becomes a frame, not even a
    # truncated one; the valid frame right behind it still arrives
    raw = getattr(canpair.bus, "serialPortOrig", None)
    if raw is None:
        pytest.skip("the host's CAN interface is not SLCAN: it cannot put a DLC-9 frame on the wire")

    def send():
        raw.write(b"t1239" + b"AB" * 9 + b"\r" + b"T000004569" + b"CD" * 9 + b"\r")
        raw.flush()
        canpair.send([(0x124, False, False, 1, b"\x01"), SENTINEL])

    result = canpair.board_receives(send, 5, stop=SENTINEL_CAN_ID)
    assert result.frames == [(0x124, False, False, 1, b"\x01")]
    if "rx_errors" in result.stats:  # the board's own SLCAN speaker answered BEL to both
        assert result.stats["rx_errors"] == 2


@pytest.mark.parametrize(
    "call, reason",
    [
        ("bus.send(0x800, b'x')", "invalid id 0x800: standard ids are 0..0x7FF (use ext=True)"),
        ("bus.send(-1, b'x')", "invalid id -0x1: standard ids are 0..0x7FF (use ext=True)"),
        ("bus.send(0x20000000, b'x', ext=True)", "invalid id 0x20000000: extended ids are 0..0x1FFFFFFF"),
        ("bus.send(0x123, b'x', rtr=False, brs=True)", "bit rate switch needs a CAN FD frame (fd=True)"),
    ],
    ids=["std-0x800", "negative", "ext-0x20000000", "brs-without-fd"],
)
def test_invalid_frame_rejected(canpair, call, reason):
    with pytest.raises(OSError) as info:
        canpair.board_sends(call)
    assert isinstance(info.value, BoardException)
    assert (info.value.errno, info.value.args[1]) == (errno.EINVAL, f"EINVAL: {reason}")
    canpair.board_sends("", sentinel=True)
    assert canpair.host_receives_until_sentinel() == []  # nothing went out before the sentinel
