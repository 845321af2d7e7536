"""RFC 2217 serial ports (ser2net on a lab host): pyserial's ``rfc2217://`` client that survives a
dropped TCP connection: bytes already received are kept, the link is re-opened (for up to
``reconnect_timeout`` seconds) and a marker goes into the console log."""

from __future__ import annotations

import contextlib
import threading
import time

import serial

from harness.config.ports import PortRef, parse_port
from harness.errors import BoardDied, ConfigError, InfrastructureError, one_line
from harness.io.opener import register
from harness.io.transport import SerialTransport, Transport


# --- RFC 2217 ------------------------------------------------------------------------------------
def rfc2217_url(url: str) -> str:
    """``rfc2217://host:port`` with ``ign_set_control`` added (see PortRef.rfc2217_url)."""
    ref = parse_port(url)
    if ref.scheme != "rfc2217":
        raise ConfigError(f"{url!r} is not an RFC 2217 URL; write it as rfc2217://HOST:PORT")
    return ref.rfc2217_url()


class Rfc2217Transport(SerialTransport):
    """pyserial's RFC 2217 client, reconnecting when the TCP connection drops.

    pyserial raises as soon as its reader thread has died, even with received bytes still
    queued; those bytes are salvaged first, so nothing the board said is lost on our side."""

    def __init__(self, url: str, baudrate: int = 115200, reconnect_timeout: float = 15.0,
                 open_timeout: float = 5.0, **pacing) -> None:  # fmt: skip
        Transport.__init__(self, **pacing)
        self.name = rfc2217_url(url)
        self.baudrate = baudrate
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._salvaged = b""
        self._pending: list[str] = []  # reconnect notes: logged after the bytes from before
        self._lock = threading.Lock()
        # A server still closing the previous connection may refuse or drop a new one for a moment.
        port, last = self._open(open_timeout)
        if port is None:
            raise InfrastructureError(
                f"cannot open serial port {self.name}: {one_line(last, 160)}; is ser2net / the lab host running?"
            )
        self.port = port

    def _open(self, timeout: float):
        """(port, None) or (None, last error) after trying for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return serial.serial_for_url(self.name, baudrate=self.baudrate, timeout=0), None
            except (serial.SerialException, OSError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                return None, last
            time.sleep(0.2)

    @property
    def connected(self) -> bool:
        """False once the server closed the connection (pyserial's reader thread has ended)."""
        thread = getattr(self.port, "_thread", None)
        return bool(self.port.is_open and thread is not None and thread.is_alive())

    def read(self, size: int, timeout: float | None) -> bytes:
        if self._salvaged:
            data, self._salvaged = self._salvaged[:size], self._salvaged[size:]
            return data
        self._flush_events()  # after the salvaged bytes went to the log: the log keeps the true order
        try:
            return self._read(size, timeout)
        except BoardDied as exc:
            self._reconnect(str(exc))
            if self._salvaged:
                return self.read(size, 0)
            return self._read(size, timeout)

    def _set_timeout(self, timeout: float | None) -> None:
        # Not the ``timeout`` property: upstream pyserial renegotiates every port setting with the
        # server on each assignment (labgrid's pyserial fork does not); the reader only needs this.
        self.port._timeout = timeout

    def _read(self, size: int, timeout: float | None) -> bytes:
        return SerialTransport.read(self, size, timeout)

    def _flush_events(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            self.event(text)

    def close(self) -> None:
        self._flush_events()
        super().close()

    def _write(self, data: bytes) -> None:
        self._flush_events()
        # A write into a connection the server already closed may "succeed" and be lost: reconnect first.
        if not self.connected:
            self._reconnect("connection closed by the server")
        try:
            super()._write(data)
        except BoardDied as exc:
            self._reconnect(str(exc))
            super()._write(data)

    def _salvage(self) -> bytes:
        """Bytes pyserial's reader thread had queued before the link died."""
        queue = getattr(self.port, "_read_buffer", None)
        out = bytearray()
        while queue is not None:
            try:
                out += queue.get_nowait()
            except Exception:  # queue.Empty
                break
        return bytes(out)

    def _reconnect(self, reason: str) -> None:
        with self._lock:
            self._salvaged += self._salvage()
            with contextlib.suppress(Exception):
                self.port.close()
            started = time.monotonic()
            port, last = self._open(self.reconnect_timeout)
            if port is None:
                self._flush_events()
                self.event(f"{self.name}: connection lost ({one_line(reason, 160)}); no reconnect within "
                           f"{self.reconnect_timeout:g} s")  # fmt: skip
                raise BoardDied(
                    f"{self.name}: connection lost ({one_line(reason, 160)}) and not back within "
                    f"{self.reconnect_timeout:g} s ({one_line(last, 160)}): is ser2net / the lab host running?"
                )
            self.port = port
            self.reconnects += 1
            self._pending.append(
                f"{self.name}: connection lost ({one_line(reason, 160)}); reconnected after "
                f"{time.monotonic() - started:.1f} s (reconnect {self.reconnects})"
            )


@register("rfc2217")
def _open_rfc2217(ref: PortRef, baudrate: int, *, reconnect_timeout: float = 15.0, **pacing) -> Rfc2217Transport:
    return Rfc2217Transport(ref.text, baudrate, reconnect_timeout=reconnect_timeout, **pacing)
