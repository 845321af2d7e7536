# Portable CAN for board code: one API over every CAN path a board may have.
#
#   import hil_can
#   bus = hil_can.open()                      # the board's CAN path, picked automatically
#   bus.send(0x123, b"\x01\x02")              # standard id, 2 data bytes
#   bus.send(0x1ABCDE, b"", ext=True)         # extended (29-bit) id, DLC 0
#   bus.send(0x123, rtr=True, dlc=4)          # remote request with DLC 4 (no data)
#   f = bus.recv(500)                         # a Frame, or None after 500 ms
#   bus.set_filters([hil_can.match(0x120, 0x7F0)])   # ids 0x120..0x12F only
#   bus.close()
#
# Backends (each in its own module, imported only when used):
#   socketcan  Linux SocketCAN raw socket (AF_CAN) on can0: MicroPython's unix port
#              (hil_can_socketcan)
#   slcan      an SLCAN (Lawicel) speaker on a serial line, for boards without a CAN
#              controller: the CMSDK UART1 of mps2-an385, or a machine.UART (hil_can_slcan)
#   machine    machine.CAN (hil_can_machine)
#   pyb        pyb.CAN on stm32 (hil_can_machine)
#
# Filters use SocketCAN's (can_id, can_mask) form everywhere: a frame is accepted when
# (frame.can_id() & mask) == (id & mask), where can_id() carries EFF_FLAG for extended ids and
# RTR_FLAG for remote frames; INV_FILTER in id inverts the match. None accepts everything,
# [] accepts nothing. Invalid frames (id out of range, more than 8 data bytes, DLC > 8) are
# rejected with OSError(EINVAL) before anything reaches the bus.
#
# The receive side is a bounded queue of rx_queue frames (the board's "FIFO"): frames that
# arrive while it is full are dropped and counted in .overflows (stats()["overflow"]), as a
# CAN controller reports an RX overrun. Frames move from the backend into the queue whenever
# recv() or any() runs.
#
# Loss below hil_can is counted too: each backend's counters() names the drop counters of its
# path (the socket's receive queue and can0's statistics on SocketCAN, malformed lines and UART
# overruns on SLCAN, the controller's overruns on machine.CAN/pyb.CAN). stats()["counters"] has
# them all with "overflow"; stats()["lost"] only those that are not 0, so "lost nothing" is
# stats()["lost"] == {}.

EFF_FLAG = 0x80000000
RTR_FLAG = 0x40000000
INV_FILTER = 0x20000000
SFF_MASK = 0x7FF
EFF_MASK = 0x1FFFFFFF
FD_LENS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)

EBADF = 9
ENODEV = 19
EINVAL = 22
ENOSPC = 28
EOPNOTSUPP = 95

PUMP_MAX = 64  # frames moved from the backend per pump: bounds the time one call takes

try:
    from time import sleep_ms, ticks_diff, ticks_ms, ticks_us  # backends use them via hil_can
except ImportError:  # mps2-an385's MicroPython has no time module: a CMSDK timer stands in
    from hil_can_cmsdk import sleep_ms, ticks_diff, ticks_ms, ticks_us  # noqa: F401


class Frame:
    """One CAN frame. id excludes flags; data is bytes (empty for remote frames, whose length
    is dlc); ts is the receive time in ticks_us() (0 for frames not received)."""

    def __init__(self, id, data=b"", ext=False, rtr=False, dlc=None, fd=False, brs=False, ts=0):
        self.id = id
        self.ext = bool(ext)
        self.rtr = bool(rtr)
        self.fd = bool(fd)
        self.brs = bool(brs)
        if rtr:
            self.dlc = len(data) if dlc is None else dlc
            self.data = b""
        else:
            self.data = bytes(data)
            self.dlc = len(self.data) if dlc is None else dlc
        self.ts = ts

    def can_id(self):
        """The id with SocketCAN's flag bits, as filters see it."""
        return self.id | (EFF_FLAG if self.ext else 0) | (RTR_FLAG if self.rtr else 0)

    def t(self):
        """(id, ext, rtr, dlc, data): printable with repr, comparable on the host."""
        return (self.id, self.ext, self.rtr, self.dlc, self.data)

    def __eq__(self, other):
        return isinstance(other, Frame) and self.t() == other.t() and self.fd == other.fd and self.brs == other.brs

    def __repr__(self):
        kind = ("FD" + ("+BRS" if self.brs else "") + " ") if self.fd else ""
        kind += "ext" if self.ext else "std"
        if self.rtr:
            return f"<Frame {kind} 0x{self.id:X} RTR dlc={self.dlc}>"
        return f"<Frame {kind} 0x{self.id:X} dlc={self.dlc} {self.data}>"


def _error(code, message):
    return OSError(code, message)


def check(frame):
    """Raise OSError(EINVAL) with the reason if the frame cannot go on a CAN bus."""
    if frame.ext:
        if not 0 <= frame.id <= EFF_MASK:
            raise _error(EINVAL, f"invalid id {hex(frame.id)}: extended ids are 0..0x1FFFFFFF")
    elif not 0 <= frame.id <= SFF_MASK:
        raise _error(EINVAL, f"invalid id {hex(frame.id)}: standard ids are 0..0x7FF (use ext=True)")
    if frame.fd:
        if frame.rtr:
            raise _error(EINVAL, "CAN FD has no remote frames")
        if frame.dlc not in FD_LENS or frame.dlc != len(frame.data):
            raise _error(EINVAL, f"invalid CAN FD length {frame.dlc} (0..8, 12, 16, 20, 24, 32, 48, 64)")
        return
    if frame.brs:
        raise _error(EINVAL, "bit rate switch needs a CAN FD frame (fd=True)")
    if frame.rtr:
        if not 0 <= frame.dlc <= 8:
            raise _error(EINVAL, f"DLC {frame.dlc} out of range: classic CAN DLC is 0..8")
        return
    if len(frame.data) > 8:
        raise _error(EINVAL, f"DLC {len(frame.data)} out of range: classic CAN carries 0..8 data bytes")
    if frame.dlc != len(frame.data):
        raise _error(EINVAL, f"DLC {frame.dlc} does not match {len(frame.data)} data bytes")


def match(id, mask=None, ext=False, rtr=None):
    """A (can_id, can_mask) filter: ids where (id & mask) agree, standard or extended only
    (ext), and data frames only (rtr=False), remote frames only (rtr=True) or both (None)."""
    if mask is None:
        mask = EFF_MASK if ext else SFF_MASK
    can_id = id | (EFF_FLAG if ext else 0)
    can_mask = mask | EFF_FLAG
    if rtr is not None:
        can_mask |= RTR_FLAG
        if rtr:
            can_id |= RTR_FLAG
    return (can_id, can_mask)


def filters_accept(filters, can_id):
    """SocketCAN's raw filter semantics (linux net/can/af_can.c): any filter matching accepts."""
    if filters is None:
        return True
    for fid, fmask in filters:
        fmask &= EFF_MASK | EFF_FLAG | RTR_FLAG
        hit = ((fid ^ can_id) & fmask) == 0
        if fid & INV_FILTER:
            hit = not hit
        if hit:
            return True
    return False


class CAN:
    """A CAN bus over one backend. Use hil_can.open() to make one."""

    def __init__(self, backend, rx_queue=64):
        if rx_queue < 1:
            raise ValueError("rx_queue must be >= 1")
        self.backend = backend
        self.rx_queue = rx_queue
        self._q = []
        self._filters = None
        self.overflows = 0
        self.rx = 0
        self.tx = 0
        self.closed = False

    @property
    def name(self):
        return self.backend.name

    @property
    def fd(self):
        return self.backend.fd

    def _live(self):
        if self.closed:
            raise _error(EBADF, "CAN bus is closed")
        return self.backend

    def send(self, id, data=b"", ext=False, rtr=False, dlc=None, fd=False, brs=False):
        """Queue one frame for transmission; OSError(EINVAL) for an invalid frame,
        OSError(EOPNOTSUPP) for an FD frame on a path without CAN FD."""
        self.send_frame(Frame(id, data, ext, rtr, dlc, fd, brs))

    def send_frame(self, frame):
        backend = self._live()
        check(frame)
        if frame.fd and not backend.fd:
            raise _error(EOPNOTSUPP, f"{backend.name}: this CAN path carries classic CAN only, no CAN FD")
        backend.write(frame)
        self.tx += 1

    def set_filters(self, filters):
        """None: accept every frame; []: none; else a list of (can_id, can_mask) pairs."""
        backend = self._live()
        if filters is not None:
            filters = [(int(i) & 0xFFFFFFFF, int(m) & 0xFFFFFFFF) for i, m in filters]
            if len(filters) > backend.max_filters:
                raise _error(ENOSPC, f"{len(filters)} filters: {backend.name} has {backend.max_filters} filter slots")
        backend.set_filters(filters)
        self._filters = filters

    def _pump(self, wait_ms):
        """Move frames from the backend into the queue; wait up to wait_ms (None: forever) for
        the first. Frames that do not fit are dropped and counted."""
        backend = self.backend
        soft = not backend.hw_filters
        frame = backend.read(wait_ms)
        moved = 0
        while frame is not None:
            if not soft or filters_accept(self._filters, frame.can_id()):
                if len(self._q) < self.rx_queue:
                    self._q.append(frame)
                    self.rx += 1
                else:
                    self.overflows += 1
            moved += 1
            if moved >= PUMP_MAX:
                break
            frame = backend.read(0)
        return moved

    def any(self):
        """Number of frames waiting (after taking in what the backend has)."""
        self._live()
        self._pump(0)
        return len(self._q)

    def recv(self, timeout_ms=None):
        """The oldest received frame, or None if none arrives within timeout_ms
        (0: do not wait; None: wait forever)."""
        self._live()
        if self._q:
            return self._q.pop(0)
        if timeout_ms is None:
            while not self._q:
                self._pump(None)
            return self._q.pop(0)
        start = ticks_ms()
        while True:
            left = timeout_ms - ticks_diff(ticks_ms(), start)
            self._pump(left if left > 0 else 0)
            if self._q:
                return self._q.pop(0)
            if left <= 0:
                return None

    def stats(self):
        s = {
            "rx": self.rx,
            "tx": self.tx,
            "overflow": self.overflows,
            "queued": len(self._q),
            "rx_queue": self.rx_queue,
            "backend": self.backend.name,
        }
        extra = getattr(self.backend, "stats", None)
        if extra:
            s.update(extra())
        counters = {"overflow": self.overflows}
        below = getattr(self.backend, "counters", None)
        if below:
            counters.update(below())
        s["counters"] = counters
        s["lost"] = {k: v for k, v in counters.items() if v}
        return s

    def close(self):
        """Release the backend; unread frames are dropped. Closing twice is harmless."""
        if not self.closed:
            self.closed = True
            self._q = []
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def backends():
    """Names of the CAN paths this board has, best first."""
    found = []
    try:
        import hil_can_socketcan

        if hil_can_socketcan.available():
            found.append("socketcan")
    except ImportError:
        pass
    try:
        import machine

        if hasattr(machine, "CAN"):
            found.append("machine")
    except ImportError:
        pass
    try:
        import pyb

        if hasattr(pyb, "CAN"):
            found.append("pyb")
    except ImportError:
        pass
    try:
        import hil_can_cmsdk

        if hil_can_cmsdk.available():
            found.append("slcan")
    except ImportError:
        pass
    return found


def open(backend=None, rx_queue=64, fd=False, **options):
    """Open the board's CAN path. backend: "socketcan" (options: ifname, rcvbuf),
    "slcan" (options: port (a machine.UART or similar), base, max_filters), "machine"
    (options: id, bitrate, mode), "pyb" (options: bus, bitrate); None picks the first of
    backends(). fd=True asks for CAN FD (OSError(EOPNOTSUPP) where the path has none)."""
    if backend is None:
        found = backends()
        if not found:
            raise _error(ENODEV, "no CAN path on this board (no AF_CAN, machine.CAN, pyb.CAN or SLCAN UART)")
        backend = found[0]
    if backend == "socketcan":
        import hil_can_socketcan

        impl = hil_can_socketcan.SocketCan(fd=fd, **options)
    elif backend == "slcan":
        import hil_can_slcan

        port = options.pop("port", None)
        if port is None:
            import hil_can_cmsdk

            port = hil_can_cmsdk.Uart(**{k: options.pop(k) for k in ("base", "bauddiv") if k in options})
        impl = hil_can_slcan.Speaker(port, fd=fd, **options)
    elif backend in ("machine", "pyb"):
        import hil_can_machine

        cls = hil_can_machine.MachineCan if backend == "machine" else hil_can_machine.PybCan
        impl = cls(fd=fd, **options)
    else:
        raise ValueError(f"unknown CAN backend {backend!r} (socketcan, slcan, machine, pyb)")
    return CAN(impl, rx_queue)


# --- board-side apps the host drives ---------------------------------------------------------


def collect(bus, count, timeout_ms=5000, idle_ms=None, stop=None, sink=None):
    """Receive up to count frames; stop early when timeout_ms has passed in total, idle_ms
    passed without a frame, or a frame whose can_id() is stop arrives (a sentinel: it is not
    kept). Frames go to sink(frame) if given, else into the returned list."""
    got = [] if sink is None else None
    n = 0
    start = ticks_ms()
    while n < count:
        left = timeout_ms - ticks_diff(ticks_ms(), start)
        if left <= 0:
            break
        f = bus.recv(left if idle_ms is None else min(left, idle_ms))
        if f is None:
            break
        if stop is not None and f.can_id() == stop:
            break
        n += 1
        if sink is None:
            got.append(f)
        else:
            sink(f)
    return got if sink is None else n


def pack(frame, out):
    """Append a compact record of frame to the bytearray out: id (4 bytes, big endian), flags
    (1 ext, 2 rtr, 4 fd, 8 brs), dlc, data length, data. 500 frames fit a small heap this way
    where 500 Frame objects do not."""
    flags = (1 if frame.ext else 0) | (2 if frame.rtr else 0) | (4 if frame.fd else 0) | (8 if frame.brs else 0)
    i = frame.id
    out.append(i >> 24)
    out.append((i >> 16) & 0xFF)
    out.append((i >> 8) & 0xFF)
    out.append(i & 0xFF)
    out.append(flags)
    out.append(frame.dlc)
    out.append(len(frame.data))
    out.extend(frame.data)


def collect_packed(bus, count, timeout_ms=5000, idle_ms=None, stop=None):
    """collect(), as pack() records in one bytearray."""
    out = bytearray()
    collect(bus, count, timeout_ms, idle_ms, stop, lambda f: pack(f, out))
    return out


def unpack(raw):
    """pack() records (bytes) -> Frames, e.g. frames the host chose for the board to send."""
    frames, i = [], 0
    while i < len(raw):
        ident = (raw[i] << 24) | (raw[i + 1] << 16) | (raw[i + 2] << 8) | raw[i + 3]
        flags, dlc, n = raw[i + 4], raw[i + 5], raw[i + 6]
        data = bytes(raw[i + 7 : i + 7 + n])
        frames.append(Frame(ident, data, flags & 1, flags & 2, dlc, flags & 4, flags & 8))
        i += 7 + n
    return frames


def answer(f):
    """canfdtest's reply to f: id + 1 (within its id width), each data byte + 1 (mod 256), same
    format, DLC, RTR, FD and BRS flags. A list: the frames to send now."""
    data = f.data if f.rtr else bytes((b + 1) & 0xFF for b in f.data)
    return [Frame((f.id + 1) & (EFF_MASK if f.ext else SFF_MASK), data, f.ext, f.rtr, f.dlc, f.fd, f.brs)]


def echo(bus, count=0, idle_ms=3000, ready="READY", reply=answer):
    """can-utils canfdtest's DUT side: every received frame goes back as reply(frame) says
    (answer(): id + 1, bytes + 1). Stops after count frames (0: never) or when idle_ms pass
    without a frame. Prints ready, then "ECHOED <received> <sent>"; returns (received, sent).
    Broken twins of this app (hil_can_drop, hil_can_nortr, ...) pass their own reply."""
    if ready:
        print(ready)
    received = sent = 0
    while not count or received < count:
        f = bus.recv(idle_ms)
        if f is None:
            break
        received += 1
        for out in reply(f):
            bus.send_frame(out)
            sent += 1
    print("ECHOED", received, sent)
    return received, sent
