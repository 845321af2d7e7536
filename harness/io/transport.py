"""Byte pipes to a board's console. One interface, two kinds:

- SerialTransport: pyserial on a device path or URL (/dev/ttyACM0, a QEMU pty, rfc2217://,
  socket://), so emulated boards exercise the exact code path of real ones;
- FdTransport: the master side of a pty the harness owns (a host process's stdio).

Writes can be paced (chunk + gap) for UARTs without flow control that drop bytes; the REPL
client writes unpaced what the board has room for (write_unpaced)."""

from __future__ import annotations

import os
import select
import termios
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import serial
from serial.urlhandler import protocol_socket

from harness.config.ports import PortRef, parse_port
from harness.errors import BoardDied, InfrastructureError
from harness.io.opener import register


class Transport(ABC):
    name: str = "?"

    def __init__(self, write_chunk: int = 0, write_gap_ms: float = 0.0) -> None:
        self.write_chunk = write_chunk
        self.write_gap = write_gap_ms / 1000.0
        self._next_write = 0.0  # paced: when the line may take the next chunk
        self.events: list[str] = []  # link events (e.g. a reconnect), newest last
        self.on_event: Callable[[str], None] | None = None  # the console sets this to its log marker

    def event(self, text: str) -> None:
        """Report a link event: kept in ``events`` and written as a marker into the console log."""
        self.events.append(text)
        if self.on_event:
            self.on_event(text)

    @abstractmethod
    def read(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes: waits at most ``timeout`` for the first; b"" on timeout.
        Raises BoardDied when the other end is gone."""

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def write(self, data: bytes) -> None:
        if not self.write_chunk:
            self._write(data)
            return
        # The gap runs after each chunk but is only waited out before the next one: a write that
        # ends a command (code + Ctrl-D) returns at once, and the answer takes longer than the gap.
        for i in range(0, len(data), self.write_chunk):
            wait = self._next_write - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._write(data[i : i + self.write_chunk])
            self._next_write = time.monotonic() + self.write_gap

    def write_unpaced(self, data: bytes) -> None:
        """Bytes the board has room for (its receive buffer holds them, or it acknowledged taking
        what came before): at once, whatever the line's pacing."""
        self._write(data)


class PortError(InfrastructureError):
    """A serial port that would not open. The message is built here, once: ``problem`` (what is
    wrong with the port) and ``fix`` (what to change, when the configuration may be at fault).
    Whoever knows where the port was configured (a target file, a lab entry) re-raises it with
    ``located()`` instead of rewriting the text."""

    FIX = "set launch.port in the target file"

    def __init__(self, port: str, problem: str, fix: str = "", where: str = "") -> None:
        self.port, self.problem, self.fix = port, problem, fix
        super().__init__((f"{where}: " if where else "") + problem + (f": {fix}" if fix else ""))

    def located(self, where: str, fix: str) -> PortError:
        """The same problem, said of ``where``, with ``fix`` in place of the generic one (if any)."""
        return PortError(self.port, self.problem, fix if self.fix else "", where)


class SerialTransport(Transport):
    _direct: _DirectIO | None = None  # subclasses on other links (rfc2217) keep pyserial's I/O

    def __init__(self, url: str, baudrate: int = 115200, exclusive: bool = True, **pacing) -> None:
        super().__init__(**pacing)
        self.name = url
        kwargs = {"baudrate": baudrate, "timeout": 0}
        if parse_port(url).scheme == "device":
            kwargs["exclusive"] = exclusive  # an OS-level lock, so two harnesses can't share a port
        try:
            self.port = serial.serial_for_url(url, **kwargs)
        except serial.SerialException as exc:
            msg = str(exc)
            if "No such file" in msg or ("could not open port" in msg and "Errno 2" in msg):
                missing = f"serial port {url} does not exist"
                raise PortError(url, missing, "check the cable or " + PortError.FIX) from None
            if "Resource temporarily unavailable" in msg or "Errno 11" in msg:
                raise PortError(url, f"serial port {url} is in use by another process; close it first") from None
            raise PortError(url, f"cannot open serial port {url}: {msg}") from None
        self._direct = _direct_io(self.port)

    def _set_timeout(self, timeout: float | None) -> None:
        if timeout != self.port.timeout:  # each assignment reconfigures the port (tcsetattr)
            self.port.timeout = timeout

    def read(self, size: int, timeout: float | None) -> bytes:
        if self._direct:
            return self._direct.read(size, timeout, self.name)
        try:
            self._set_timeout(timeout)
            first = self.port.read(1)
            if not first:
                return b""
            waiting = self.port.in_waiting
            return first + (self.port.read(min(waiting, size - 1)) if waiting and size > 1 else b"")
        except (serial.SerialException, OSError) as exc:
            raise BoardDied(f"serial port {self.name} went away: {exc}") from None

    def _write(self, data: bytes) -> None:
        try:
            if self._direct:
                self._direct.write(data)
            else:
                self.port.write(data)
            if self.write_chunk and hasattr(self.port, "fd"):
                self.port.flush()  # paced: the gap starts once the chunk has left (tcdrain)
        except (serial.SerialException, OSError, termios.error) as exc:  # tcdrain on a dead pty: termios.error
            raise BoardDied(f"serial port {self.name} went away while writing: {exc}") from None

    def close(self) -> None:
        try:
            if isinstance(self.port, protocol_socket.Serial) and self.port.is_open and self.port._socket:
                # socket://: pyserial's close() sleeps 0.3 s "for quick reconnects" (none here), which
                # every restart of a board on a TCP console would pay
                self.port._socket.close()
                self.port._socket, self.port.is_open = None, False
            self.port.close()
        except (serial.SerialException, OSError):
            pass


class FdTransport(Transport):
    """The master end of a pty whose slave is a host process's stdin/stdout."""

    def __init__(self, fd: int, name: str, **pacing) -> None:
        super().__init__(**pacing)
        self.fd = fd
        self.name = name

    def read(self, size: int, timeout: float | None) -> bytes:
        if self.fd < 0:
            raise BoardDied(f"console {self.name} is closed")
        fd = self.fd
        return _read_ready(fd, lambda n: os.read(fd, n), size, timeout, f"console {self.name}")  # EIO: no slave open

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                raise BoardDied(f"console {self.name} went away while writing: {exc}") from None
            view = view[n:]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _DirectIO:
    """The exec hot path on an open pyserial port, without pyserial's per-call costs: assigning a
    timeout reconfigures a posix port (tcgetattr + tcsetattr), and read(1) + in_waiting + read(n)
    is five syscalls where select + read is two. Errors are pyserial's: a vanished pty raises
    OSError (EIO), a closed socket reads b""."""

    def __init__(self, handle, recv, send) -> None:
        self.handle, self.recv, self.send = handle, recv, send

    def read(self, size: int, timeout: float | None, name: str) -> bytes:
        return _read_ready(self.handle, self.recv, size, timeout, f"serial port {name}")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.send(view) :]
            except BlockingIOError:  # non-blocking fd/socket with a full buffer: wait for room
                _, ready, _ = select.select([], [self.handle], [], WRITE_STALL)
                if not ready:
                    raise OSError(f"not accepting data for {WRITE_STALL:g} s") from None


WRITE_STALL = 30.0  # seconds a console may refuse more bytes before it counts as gone


def _read_ready(handle, recv: Callable[[int], bytes], size: int, timeout: float | None, who: str) -> bytes:
    """Up to ``size`` bytes once ``handle`` is readable (b"" after ``timeout``): one select and one
    read. A link that reports data but reads none, or fails to read (a pty with no other end: EIO),
    has gone away: BoardDied naming ``who``."""
    ready, _, _ = select.select([handle], [], [], timeout)
    if not ready:
        return b""
    try:
        data = recv(size)
    except BlockingIOError:
        return b""
    except OSError as exc:
        raise BoardDied(f"{who} went away: {exc}") from None
    if not data:
        raise BoardDied(f"{who} went away: it reports data but reads none (closed)")
    return data


def _direct_io(port) -> _DirectIO | None:
    """Direct I/O for the two kinds of port emulated boards use (a pty or device path, socket://);
    None for the rest (rfc2217://, which has its own reader thread), which stay on pyserial."""
    if isinstance(port, protocol_socket.Serial) and port._socket is not None:
        sock = port._socket
        return _DirectIO(sock, sock.recv, sock.send)
    fd = getattr(port, "fd", None)
    if isinstance(port, serial.Serial) and isinstance(fd, int) and fd >= 0:
        return _DirectIO(fd, lambda n: os.read(fd, n), lambda d: os.write(fd, d))
    return None


def _open_serial(ref: PortRef, baudrate: int, *, reconnect_timeout: float = 0.0, **pacing) -> SerialTransport:
    return SerialTransport(ref.text, baudrate, **pacing)  # pyserial opens device paths and socket://


register("device", "socket")(_open_serial)
