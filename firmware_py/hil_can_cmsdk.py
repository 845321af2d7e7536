# mps2-an385 (Arm MPS2 with Cortex-M3) hardware for hil_can, driven with machine.mem32:
#
# - Uart: the CMSDK APB UART1 at 0x40005000 as an SLCAN port (QEMU gives it a second -serial).
#   DATA +0, STATE +4 (bit0 TX full, bit1 RX full, bits 2/3 TX/RX overrun, write 1 to clear),
#   CTRL +8 (bit0 TX enable, bit1 RX enable), BAUDDIV +0x10 (QEMU ignores values below 16).
#   The receive buffer holds one byte; QEMU holds the rest back until the guest reads DATA, so
#   nothing is lost on the way in.
# - a clock: ports/qemu's MicroPython 1.25 has no time module, so ticks come from timer 1 of
#   the CMSDK APB dual timer at 0x40002000 (25 MHz, prescaler /256: 10.24 us a count), free
#   running from 0x3FFFFFFF down (values stay small ints) and extended in software.
import sys

import machine

UART1 = 0x40005000
_DATA, _STATE, _CTRL, _BAUDDIV = 0, 4, 8, 0x10
_TX_FULL, _RX_FULL, _RX_OVERRUN = 1, 2, 8

_TIMER = 0x40002000  # dual timer, timer 1: LOAD +0, VALUE +4, CONTROL +8
_TIMER_CTRL = 0x80 | 0x40 | 0x08 | 0x02  # enable, periodic, prescale /256, 32-bit
_WRAP = 0x3FFFFFFF
_count = 0
_last = None


def available():
    machine_name = getattr(sys.implementation, "_machine", "")
    return hasattr(machine, "mem32") and "mps2" in machine_name.lower()


def _ticks():
    global _count, _last
    m = machine.mem32
    if _last is None:
        if m[_TIMER + 8] & 0xFF != _TIMER_CTRL:  # not running yet (a soft reset keeps it running)
            m[_TIMER + 8] = 0
            m[_TIMER] = _WRAP
            m[_TIMER + 8] = _TIMER_CTRL
        _last = m[_TIMER + 4]
    now = m[_TIMER + 4]
    _count += (_last - now) & _WRAP  # counts down; one wrap every 3 hours
    _last = now
    return _count


def ticks_us():
    return _ticks() * 256 // 25


def ticks_ms():
    return _ticks() * 256 // 25000


def ticks_diff(a, b):
    return a - b  # the software count never wraps


def sleep_ms(ms):
    start = ticks_ms()
    while ticks_ms() - start < ms:
        pass


class Uart:
    """The CMSDK APB UART as an SLCAN port (see hil_can_slcan)."""

    def __init__(self, base=UART1, bauddiv=16):
        self.base = base
        self.name = f"cmsdk-uart@0x{base:X}"
        m = machine.mem32
        m[base + _BAUDDIV] = bauddiv
        m[base + _STATE] = 0xC  # clear overrun flags
        m[base + _CTRL] = 3  # TX and RX enabled
        self.overruns = 0  # times the RX overrun flag was found set: bytes, so frames, lost

    def write(self, data):
        m = machine.mem32
        d = self.base
        s = d + _STATE
        for c in data:
            while m[s] & _TX_FULL:
                pass
            m[d] = c

    def read_line(self, buf, wait_ms):
        m = machine.mem32
        d = self.base
        s = d + _STATE
        if m[s] & _RX_OVERRUN:
            self.overruns += 1
            m[s] = _RX_OVERRUN  # write 1 to clear
        start = None
        while True:
            while m[s] & _RX_FULL:
                c = m[d] & 0xFF
                if c == 13:
                    return True
                if c != 10 and c != 7:
                    buf.append(c)
                if len(buf) > 160:  # not SLCAN: hand it over as one (malformed) line
                    return True
            if wait_ms == 0:
                return False
            if start is None:
                start = ticks_ms()
            elif wait_ms is not None and ticks_ms() - start >= wait_ms:
                return False

    def flush(self, quiet_ms=20, max_ms=5000, stale_quiet_ms=200):
        """Drop what is on its way in until the line has been quiet for quiet_ms; once a byte
        came, for stale_quiet_ms: an earlier app stopped mid-exchange left frames in flight, and
        on a loaded host QEMU feeds the rest with gaps longer than quiet_ms."""
        m = machine.mem32
        d = self.base
        s = d + _STATE
        start = last = ticks_ms()
        while True:
            now = ticks_ms()
            if m[s] & _RX_FULL:
                m[d]
                last = now
                quiet_ms = stale_quiet_ms
            elif now - last >= quiet_ms or now - start >= max_ms:
                return

    def counters(self):
        return {"uart_rx_overruns": self.overruns}

    def close(self):
        # RX off: QEMU holds incoming bytes back until the next open, whose flush drops them
        machine.mem32[self.base + _CTRL] = 0
