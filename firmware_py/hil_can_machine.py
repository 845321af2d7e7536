# hil_can backends for boards with a CAN controller: machine.CAN (MicroPython's portable class,
# docs/library/machine.CAN.rst) and pyb.CAN (stm32, docs/library/pyb.CAN.rst). Both are written
# against the documented APIs; tests/test_hil_can.py runs them under the unix port against fake
# controllers that behave as documented.
#
# Filters: hil_can applies SocketCAN's (can_id, can_mask) semantics exactly, in software, for
# these backends (hw_filters = False); machine.CAN additionally gets hardware filters that pass
# a superset, so the controller drops most unwanted traffic before it costs anything.
import hil_can

ENOBUFS = 105
ETIMEDOUT = 110


def _deadline_loop(wait_ms):
    """Yields until wait_ms (None: forever) has passed, sleeping 1 ms between polls."""
    start = hil_can.ticks_ms()
    while True:
        yield
        if wait_ms is not None and hil_can.ticks_diff(hil_can.ticks_ms(), start) >= wait_ms:
            return
        hil_can.sleep_ms(1)


class MachineCan:
    hw_filters = False
    fd = False  # machine.CAN: "does not currently support CAN FD features"

    def __init__(self, id=1, bitrate=500000, mode=None, fd=False, can=None, write_timeout_ms=1000):
        if fd:
            raise OSError(hil_can.EOPNOTSUPP, "machine.CAN has no CAN FD (use pyb.CAN on stm32)")
        if can is None:
            import machine

            can = machine.CAN(id, bitrate) if mode is None else machine.CAN(id, bitrate, mode)
        self.can = can
        self.name = f"machine.CAN({id!r})"
        self.max_filters = getattr(can, "FILTERS_MAX", 16)
        self.write_timeout_ms = write_timeout_ms
        self.overruns = 0
        self._buf = [0, memoryview(bytearray(8)), 0, 0]  # recv without allocating
        can.set_filters(None)  # nothing is received until set_filters has been called

    def write(self, frame):
        can = self.can
        flags = (can.FLAG_EXT_ID if frame.ext else 0) | (can.FLAG_RTR if frame.rtr else 0)
        # a remote request's DLC is the length of data (its contents are ignored)
        data = bytes(frame.dlc) if frame.rtr else frame.data
        for _ in _deadline_loop(self.write_timeout_ms):
            if can.send(frame.id, data, flags) is not None:
                return
        raise OSError(ENOBUFS, f"machine.CAN transmit queue stayed full for {self.write_timeout_ms} ms")

    def convert(self, res, ts=0):
        """A recv() result [id, memoryview, flags, errors] -> hil_can.Frame."""
        can = self.can
        ident, data, flags, errors = res[0], res[1], res[2], res[3]
        if errors & getattr(can, "RECV_ERR_OVERRUN", 0):
            self.overruns += 1
        ext = bool(flags & can.FLAG_EXT_ID)
        if flags & can.FLAG_RTR:
            return hil_can.Frame(ident, b"", ext, True, len(data), ts=ts)
        return hil_can.Frame(ident, bytes(data), ext, False, None, ts=ts)

    def read(self, wait_ms):
        for _ in _deadline_loop(wait_ms):
            res = self.can.recv(self._buf)
            if res:
                return self.convert(res, hil_can.ticks_us())
            if wait_ms == 0:
                return None
        return None

    def hardware_filters(self, filters):
        """hil_can filters -> machine.CAN (identifier, bit_mask, flags) items passing a superset
        (None: the controller must accept everything)."""
        if filters is None:
            return None
        can = self.can
        items = []
        for fid, fmask in filters:
            if fid & hil_can.INV_FILTER:
                return None  # the controller cannot invert a match
            for ext in (False, True):
                if fmask & hil_can.EFF_FLAG and bool(fid & hil_can.EFF_FLAG) != ext:
                    continue  # the filter pins the other id type
                limit = hil_can.EFF_MASK if ext else hil_can.SFF_MASK
                flags = can.FLAG_EXT_ID if ext else 0
                if fmask & fid & hil_can.RTR_FLAG:
                    flags |= can.FLAG_RTR  # remote frames only; "no RTR" is left to software
                items.append((fid & limit, fmask & limit, flags))
        return None if len(items) > self.max_filters else items

    def set_filters(self, filters):
        self.can.set_filters(self.hardware_filters(filters))

    def stats(self):
        counters = self.can.get_counters() if hasattr(self.can, "get_counters") else None
        hw = counters[7] if counters and len(counters) > 7 else None
        return {"hw_overruns": self.overruns if hw is None else hw}

    def counters(self):
        return self.stats()

    def close(self):
        self.can.deinit()


class PybCan:
    hw_filters = False

    def __init__(self, bus=1, bitrate=500000, mode=None, fd=False, can=None, write_timeout_ms=1000):
        if can is None:
            import pyb

            can = pyb.CAN(bus)
            can.init(pyb.CAN.NORMAL if mode is None else mode, baudrate=bitrate)
        self.can = can
        # FD controllers (stm32 H7 FDCAN) have the RANGE/DUAL/MASK filter modes
        self.fd = hasattr(can, "RANGE")
        if fd and not self.fd:
            raise OSError(hil_can.EOPNOTSUPP, "pyb.CAN on this board is a classic CAN controller, no CAN FD")
        self.name = f"pyb.CAN({bus!r})"
        self.max_filters = 64  # exact filtering happens in software; the banks accept everything
        self.write_timeout_ms = write_timeout_ms
        self.overruns = 0
        self._accept_all()
        can.rxcallback(0, self._on_rx)

    def _on_rx(self, can, reason):
        if reason == 2:  # "A message has been lost due to a full FIFO"
            self.overruns += 1

    def _accept_all(self):
        can = self.can
        if self.fd:
            can.setfilter(0, can.MASK, 0, (0, 0), extframe=False)
            can.setfilter(0, can.MASK, 0, (0, 0), extframe=True)
        else:
            can.setfilter(0, can.MASK32, 0, (0, 0), extframe=False)
            can.setfilter(1, can.MASK32, 0, (0, 0), extframe=True)

    def write(self, frame):
        data = bytes(frame.dlc) if frame.rtr else frame.data
        kwargs = {"timeout": self.write_timeout_ms, "rtr": frame.rtr, "extframe": frame.ext}
        if frame.fd:
            kwargs["fdf"] = True
            kwargs["brs"] = frame.brs
        self.can.send(data, frame.id, **kwargs)

    def convert(self, res, ts=0):
        """A recv() tuple -> hil_can.Frame: (id, extended, rtr, fmi, data) since MicroPython 1.20,
        (id, rtr, fmi, data) before (standard ids only)."""
        if len(res) >= 5:
            ident, ext, rtr, data = res[0], res[1], res[2], res[4]
        else:
            ident, ext, rtr, data = res[0], False, res[1], res[3]
        if rtr:
            return hil_can.Frame(ident, b"", ext, True, len(data), ts=ts)
        return hil_can.Frame(ident, bytes(data), ext, False, None, len(data) > 8, False, ts)

    def read(self, wait_ms):
        can = self.can
        if wait_ms == 0 and not can.any(0):
            return None
        try:
            res = can.recv(0, timeout=wait_ms if wait_ms else (0 if wait_ms == 0 else 0x3FFFFFFF))
        except OSError as e:
            if e.errno == ETIMEDOUT:
                return None
            raise
        return self.convert(res, hil_can.ticks_us())

    def set_filters(self, filters):
        if filters == []:
            if self.fd:
                self.can.clearfilter(0, extframe=False)
                self.can.clearfilter(0, extframe=True)
            else:
                self.can.clearfilter(0)
                self.can.clearfilter(1)
        else:
            self._accept_all()

    def stats(self):
        return {"hw_overruns": self.overruns}

    def counters(self):
        return self.stats()

    def close(self):
        self.can.deinit()
