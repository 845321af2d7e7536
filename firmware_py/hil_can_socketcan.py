# hil_can backend: a Linux SocketCAN raw socket (AF_CAN) from MicroPython's unix port.
# Frames are struct can_frame (16 bytes) or, with CAN FD, struct canfd_frame (72 bytes)
# (linux/can.h). MicroPython has no recvmsg, so the kernel's per-socket drop counter
# (SO_RXQ_OVFL) is out of reach: the receive buffer is raised (SO_RCVBUFFORCE) so bursts fit,
# and hil_can counts overflows of its own bounded queue.
import select
import socket
import struct

import hil_can

AF_CAN = 29
SOCK_RAW = 3
CAN_RAW = 1
SOL_SOCKET = 1
SO_RCVBUF = 8
SO_RCVBUFFORCE = 33
SOL_CAN_RAW = 101
CAN_RAW_FILTER = 1
CAN_RAW_FD_FRAMES = 5
CAN_RAW_FILTER_MAX = 512  # linux/can/raw.h: more filters -> EINVAL
CAN_MTU = 16
CANFD_MTU = 72
CANFD_BRS = 0x01
CANFD_FDF = 0x04
EAGAIN = 11
ENOBUFS = 105

_CLASSIC = "<IB3x8s"
_FD = "<IBB2x64s"


def _sys(ifname, leaf):
    try:
        with open(f"/sys/class/net/{ifname}/{leaf}") as f:
            return f.read().strip()
    except OSError:
        return None


def available(ifname="can0"):
    return hasattr(socket, "socket") and _sys(ifname, "ifindex") is not None


def pack(frame):
    """hil_can.Frame -> can_frame / canfd_frame bytes."""
    if frame.fd:
        flags = CANFD_FDF | (CANFD_BRS if frame.brs else 0)
        return struct.pack(_FD, frame.can_id(), len(frame.data), flags, frame.data)
    return struct.pack(_CLASSIC, frame.can_id(), frame.dlc, frame.data)


def unpack(raw, ts=0):
    """can_frame / canfd_frame bytes -> hil_can.Frame (None for anything else)."""
    if len(raw) == CANFD_MTU:
        can_id, n, flags, data = struct.unpack(_FD, raw)
        fd, brs = True, bool(flags & CANFD_BRS)
    elif len(raw) == CAN_MTU:
        can_id, n, data = struct.unpack(_CLASSIC, raw)
        fd = brs = False
    else:
        return None
    ext = bool(can_id & hil_can.EFF_FLAG)
    rtr = bool(can_id & hil_can.RTR_FLAG)
    ident = can_id & (hil_can.EFF_MASK if ext else hil_can.SFF_MASK)
    if rtr:
        return hil_can.Frame(ident, b"", ext, True, n, ts=ts)
    return hil_can.Frame(ident, data[:n], ext, False, None, fd, brs, ts)


class SocketCan:
    hw_filters = True
    max_filters = CAN_RAW_FILTER_MAX

    def __init__(self, ifname="can0", fd=False, rcvbuf=1 << 20, write_timeout_ms=2000):
        index = _sys(ifname, "ifindex")
        if index is None:
            raise OSError(hil_can.ENODEV, f"no CAN interface {ifname} (/sys/class/net/{ifname})")
        mtu = int(_sys(ifname, "mtu") or CAN_MTU)
        self.name = "socketcan:" + ifname
        self.fd = mtu == CANFD_MTU
        if fd and not self.fd:
            raise OSError(hil_can.EOPNOTSUPP, f"{ifname} has MTU {mtu}: classic CAN only, no CAN FD")
        self.write_timeout_ms = write_timeout_ms
        s = socket.socket(AF_CAN, SOCK_RAW, CAN_RAW)
        try:
            try:
                s.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:  # not root: as much as net.core.rmem_max allows
                s.setsockopt(SOL_SOCKET, SO_RCVBUF, rcvbuf)
            if self.fd:
                s.setsockopt(SOL_CAN_RAW, CAN_RAW_FD_FRAMES, 1)
            s.bind(struct.pack("<HhiII", AF_CAN, 0, int(index), 0, 0) + bytes(8))
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.poller = select.poll()
        self.poller.register(s, select.POLLIN)
        self.mtu = CANFD_MTU if self.fd else CAN_MTU

    def write(self, frame):
        raw = pack(frame)
        start = hil_can.ticks_ms()
        while True:
            try:
                self.sock.send(raw)
                return
            except OSError as e:
                # ENOBUFS: the interface's TX queue is full (canfdtest retries the same way)
                if (
                    e.errno not in (ENOBUFS, EAGAIN)
                    or hil_can.ticks_diff(hil_can.ticks_ms(), start) > self.write_timeout_ms
                ):
                    raise
                hil_can.sleep_ms(1)

    def read(self, wait_ms):
        if not self.poller.poll(-1 if wait_ms is None else wait_ms):
            return None
        try:
            raw = self.sock.recv(self.mtu)
        except OSError as e:
            if e.errno == EAGAIN:
                return None
            raise
        return unpack(raw, hil_can.ticks_us())

    def set_filters(self, filters):
        # None: the kernel's default, one filter matching everything; []: no filter, no frames
        opt = struct.pack("<II", 0, 0) if filters is None else b"".join(struct.pack("<II", i, m) for i, m in filters)
        self.sock.setsockopt(SOL_CAN_RAW, CAN_RAW_FILTER, opt)

    def close(self):
        self.poller.unregister(self.sock)
        self.sock.close()
