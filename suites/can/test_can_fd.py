"""CAN FD: 64-byte payloads and the bit rate switch flag, both ways. Paths that carry classic
CAN only list these in expected_failures.toml with the reason (qemu_x86's can0 is Linux's slcan
line discipline, classic only; machine.CAN has no FD)."""

from __future__ import annotations

import can
import pytest
from hilcan_host import SENTINEL, SENTINEL_CAN_ID, SENTINEL_SEND

pytestmark = pytest.mark.requires("can")

FD_LENGTHS = [0, 8, 12, 16, 20, 24, 32, 48, 64]


def payload(n: int, seed: int) -> bytes:
    return bytes((seed + 7 * i) & 0xFF for i in range(n))


def fd_message(ident: int, data: bytes, ext: bool = False, brs: bool = False) -> can.Message:
    return can.Message(arbitration_id=ident, is_extended_id=ext, data=data, is_fd=True, bitrate_switch=brs)


def test_fd_payloads_up_to_64_bytes(canpair):
    sent = [(0x100 + n, n % 2 == 1, payload(n, n)) for n in FD_LENGTHS]

    def send():
        for i, e, d in sent:
            canpair.bus.send(fd_message(i, d, e), timeout=5)
        canpair.send([SENTINEL])

    result = canpair.board_receives(send, len(sent) + 10, open_kw={"fd": True}, stop=SENTINEL_CAN_ID)
    assert result.frames == [(i, e, False, len(d), d) for i, e, d in sent]
    canpair.board_sends(
        "".join(f"bus.send({i:#x}, {d!r}, ext={e}, fd=True)\n" for i, e, d in sent), open_kw={"fd": True}, sentinel=True
    )
    got = canpair.host_receives_until_sentinel()
    assert [(m.arbitration_id, m.is_extended_id, m.is_fd, bytes(m.data)) for m in got] == [
        (i, e, True, d) for i, e, d in sent
    ]


def test_fd_bit_rate_switch_flag_kept(canpair):
    running = canpair.dut.spawn(
        f"import hil_can\nbus = {canpair.opener(fd=True)}\nprint('READY')\n"
        "got = hil_can.collect(bus, 2, 15000)\n"
        "print('FLAGS', [(f.fd, f.brs, len(f.data)) for f in got])\n"
        "for f in got:\n"
        "    bus.send(f.id + 1, f.data, fd=True, brs=f.brs)\n"
        f"{SENTINEL_SEND}\n"
        "bus.close()\n"
    )
    running.wait_for("READY", timeout=30)
    canpair.bus.send(fd_message(0x10, payload(64, 1), brs=True), timeout=5)
    canpair.bus.send(fd_message(0x20, payload(32, 2), brs=False), timeout=5)
    out = running.finish(timeout=60)
    assert "FLAGS [(True, True, 64), (True, False, 32)]" in out.splitlines()
    got = canpair.host_receives_until_sentinel()
    assert [(m.arbitration_id, m.is_fd, m.bitrate_switch, bytes(m.data)) for m in got] == [
        (0x11, True, True, payload(64, 1)),
        (0x21, True, False, payload(32, 2)),
    ]
