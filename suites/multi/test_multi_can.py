"""CAN between boards: their links joined into one bus by the host (harness/net/canhub.py), the
host a third node that sees every frame and can inject its own. Request/response between nodes,
acceptance filters on one node against another's traffic, a burst that must arrive whole and in
order. The hub has no bit timing and no arbitration (see canhub.py): no case here depends on
either; arbitration order between simultaneous senders is not tested."""

from __future__ import annotations

import can
import pytest

pytestmark = [pytest.mark.roles("server", "client"), pytest.mark.requires("can")]

OFFSET = 0x100
TIMEOUT = 60.0


def request(i: int, ident: int) -> bytes:
    return bytes([i, ident & 0xFF, ident >> 8])


def test_can_request_response_between_nodes(duts, can_hub):
    ids = [0x010, 0x123, 0x2FF, 0x0F0]
    srv = duts.server.start("hil_multi.can_responder", len(ids), OFFSET).ready(TIMEOUT)
    cli = duts.client.start("hil_multi.can_requester", ids, OFFSET)
    answers = [(i + OFFSET, bytes(reversed(request(n, i)))) for n, i in enumerate(ids)]
    assert cli.result(TIMEOUT) == answers
    assert srv.result(TIMEOUT) == [(i, request(n, i)) for n, i in enumerate(ids)]
    seen = can_hub.wait(2 * len(ids))
    assert [(s.source, s.msg.arbitration_id) for s in seen] == [
        x for n, i in enumerate(ids) for x in (("client", i), ("server", i + OFFSET))]


def test_can_filters_across_nodes(duts, can_hub, can_module):
    """The server accepts 0x200..0x20F only; the client sends on both sides of the range."""
    frames = [(0x1FF, b"\x01"), (0x200, b"\x02"), (0x20F, b"\x03"), (0x210, b"\x04"), (0x080, b"\x05"),
              (0x205, b"\x06")]
    srv = duts.server.start("hil_multi.can_listen", 6, [(0x200, 0x7F0)], 20000, 2000).ready(TIMEOUT)
    assert duts.client.run(f"{can_module}.can_send", frames, timeout=TIMEOUT) == len(frames)
    assert srv.result(TIMEOUT) == [f for f in frames if 0x200 <= f[0] <= 0x20F]
    assert [s.msg.arbitration_id for s in can_hub.wait(len(frames))] == [f[0] for f in frames]  # the host sees all


def test_can_burst_arrives_whole_and_in_order(duts, can_hub, can_module):
    count = 60
    frames = [(0x300, bytes([i >> 8, i & 0xFF])) for i in range(count)]
    srv = duts.server.start("hil_multi.can_listen", count, None, 30000, 3000).ready(TIMEOUT)
    assert duts.client.run(f"{can_module}.can_send", frames, timeout=TIMEOUT) == count
    got = srv.result(TIMEOUT)
    assert [d for _, d in got] == [d for _, d in frames], f"{len(got)} of {count} frames, in this order: {got}"


def test_can_host_as_third_node(duts, can_hub):
    """The host injects a request: both boards see it, the server answers, the client sees the answer."""
    srv = duts.server.start("hil_multi.can_responder", 1, OFFSET).ready(TIMEOUT)
    cli = duts.client.start("hil_multi.can_listen", 2, None, 20000, 2000).ready(TIMEOUT)
    can_hub.send(can.Message(arbitration_id=0x042, is_extended_id=False, data=b"host"))
    assert srv.result(TIMEOUT) == [(0x042, b"host")]
    assert cli.result(TIMEOUT) == [(0x042, b"host"), (0x142, b"tsoh")]
    assert [(s.source, s.msg.arbitration_id) for s in can_hub.wait(2)] == [("host", 0x042), ("server", 0x142)]
