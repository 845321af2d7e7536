# A broken twin of hil_can's echo app (the suite must fail it: tests/integration/test_suite_can.py):
# on SocketCAN it shrinks the socket's receive queue to the kernel's minimum (SO_RCVBUF 0: a few
# frames), as an app that never sizes it for line-rate bursts; the kernel then drops frames, which
# the board must count (hil_can_socketcan's sock_rxq_drops) and the suite must report. Other
# backends have no such queue: there it is the plain echo app.
import hil_can

SOL_SOCKET = 1
SO_RCVBUF = 8


def echo(bus, count=0, idle_ms=3000, ready="READY"):
    sock = getattr(bus.backend, "sock", None)
    if sock is not None:
        sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 0)
    return hil_can.echo(bus, count, idle_ms, ready)
