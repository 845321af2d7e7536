# hil_can backend: a Linux SocketCAN raw socket (AF_CAN) from MicroPython's unix port.
# Frames are struct can_frame (16 bytes) or, with CAN FD, struct canfd_frame (72 bytes)
# (linux/can.h).
#
# Loss: the kernel drops a frame when the socket's receive queue is full (sk_drops, what
# SO_RXQ_OVFL reports). MicroPython's socket has no recvmsg and no getsockopt, so the count
# comes from /proc/net/can/rcvlist_*: each receiver's "matches" counts the frames handed to this
# socket, so matches - frames read = frames the queue dropped ("sock_rxq_drops"; frames still
# waiting count until read: take it when the queue is drained). Own frames are not looped back
# (CAN_RAW_LOOPBACK 0), so matches counts only frames from the bus. can0's own drop counters
# (/sys/class/net/can0/statistics) are reported as deltas since open. The queue is sized for
# line-rate bursts: sk_rcvbuf 16 MB (SO_RCVBUFFORCE 8 MB, doubled by the kernel) holds about
# 20,000 classic frames (~770 bytes of skb each); at the 2 MB it had, an unpaced burst of 10,000
# frames lost 750-5,240 of them on qemu_x86 (measured).
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
CAN_RAW_LOOPBACK = 3
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


_RCVLISTS = ("all", "fil", "inv", "sff", "eff", "err")
_IF_DROPS = ("rx_dropped", "rx_errors", "rx_over_errors", "rx_fifo_errors", "rx_missed_errors")


def parse_rcvlist(text, into):
    """Add each raw receiver's matches in one /proc/net/can/rcvlist_* text to into[userdata]."""
    for line in text.split("\n"):
        cols = line.split()  # device can_id can_mask function userdata matches ident
        if len(cols) == 7 and cols[6] == "raw" and cols[5].isdigit():
            into[cols[4]] = into.get(cols[4], 0) + int(cols[5])
    return into


def receivers():
    """{userdata: total matches} of the raw sockets' receivers in /proc/net/can/rcvlist_*
    (userdata is the socket, printed as a hashed pointer), or None without those files."""
    found = None
    for leaf in _RCVLISTS:
        try:
            with open("/proc/net/can/rcvlist_" + leaf) as f:
                found = parse_rcvlist(f.read(), found or {})
        except OSError:
            continue
    return found


def if_counters(ifname):
    out = {}
    for leaf in _IF_DROPS:
        v = _sys(ifname, "statistics/" + leaf)
        if v is not None:
            out[leaf] = int(v)
    return out


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

    def __init__(self, ifname="can0", fd=False, rcvbuf=8 << 20, write_timeout_ms=2000):
        index = _sys(ifname, "ifindex")
        if index is None:
            raise OSError(hil_can.ENODEV, f"no CAN interface {ifname} (/sys/class/net/{ifname})")
        mtu = int(_sys(ifname, "mtu") or CAN_MTU)
        self.name = "socketcan:" + ifname
        self.fd = mtu == CANFD_MTU
        if fd and not self.fd:
            raise OSError(hil_can.EOPNOTSUPP, f"{ifname} has MTU {mtu}: classic CAN only, no CAN FD")
        self.write_timeout_ms = write_timeout_ms
        self.ifname = ifname
        before = receivers()
        s = socket.socket(AF_CAN, SOCK_RAW, CAN_RAW)
        try:
            try:
                s.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:  # not root: as much as net.core.rmem_max allows
                s.setsockopt(SOL_SOCKET, SO_RCVBUF, rcvbuf)
            s.setsockopt(SOL_CAN_RAW, CAN_RAW_LOOPBACK, 0)
            if self.fd:
                s.setsockopt(SOL_CAN_RAW, CAN_RAW_FD_FRAMES, 1)
            s.bind(struct.pack("<HhiII", AF_CAN, 0, int(index), 0, 0) + bytes(8))
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s
        # this socket's receivers: the userdata that appeared with bind (None: not knowable)
        after = receivers()
        new = [k for k in after or () if k not in (before or {})]
        self.me = new[0] if len(new) == 1 else None
        self.one_receiver = True  # with several filters a frame may match (count) more than once
        self.read_count = 0  # frames read since the receivers were (re)registered
        self.if0 = if_counters(ifname)
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
        self.read_count += 1
        return unpack(raw, hil_can.ticks_us())

    def set_filters(self, filters):
        # None: the kernel's default, one filter matching everything; []: no filter, no frames
        opt = struct.pack("<II", 0, 0) if filters is None else b"".join(struct.pack("<II", i, m) for i, m in filters)
        self.sock.setsockopt(SOL_CAN_RAW, CAN_RAW_FILTER, opt)
        self.one_receiver = filters is None or len(filters) <= 1
        self.read_count = 0  # new receivers, matches from 0 (frames still queued would count as read)

    def counters(self):
        """The path's drop counters: the socket's receive queue (when countable) and the
        interface's rx drop/error counters since open."""
        out = {}
        now = receivers()
        if self.me is not None and now is not None and self.one_receiver:
            out["sock_rxq_drops"] = now.get(self.me, 0) - self.read_count
        for k, v in if_counters(self.ifname).items():
            out[self.ifname + "." + k] = v - self.if0.get(k, 0)
        return out

    def close(self):
        self.poller.unregister(self.sock)
        self.sock.close()
