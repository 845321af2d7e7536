"""A board's console: pexpect matching over any Transport, with a full log of what the board said.

The log is kept in a file per board (attached to test reports) and its tail in memory, so an
error can quote the last thing the board printed."""

from __future__ import annotations

import time
from pathlib import Path

import pexpect
from pexpect.spawnbase import SpawnBase

from harness.errors import ConsoleTimeout
from harness.io.transport import Transport

TAIL_BYTES = 2048


class Console(SpawnBase):
    def __init__(self, transport: Transport, log_path: Path | None = None, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout, maxread=4096, searchwindowsize=None)
        self.delayafterread = None  # pexpect's default sleep per read costs latency for nothing
        self.transport = transport
        transport.on_event = self.note  # link events (reconnects) become log markers
        self.log_path = log_path
        self._log_file = open(log_path, "ab", buffering=0) if log_path else None  # noqa: SIM115
        self._tail = bytearray()
        self.received = 0  # bytes seen so far: lets callers slice the log per test

    # pexpect's SpawnBase contract: read_nonblocking + send
    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> bytes:
        if timeout == -1:
            timeout = self.timeout
        data = self.transport.read(size, timeout)
        if not data:
            raise pexpect.TIMEOUT(f"no output from {self.transport.name} in {timeout} s")
        self._record(data)
        return data

    def send(self, data: bytes | str) -> int:
        if isinstance(data, str):
            data = data.encode()
        self.transport.write(data)
        return len(data)

    def _record(self, data: bytes) -> None:
        self.received += len(data)
        if self._log_file:
            self._log_file.write(data)
        self._tail += data
        del self._tail[:-TAIL_BYTES]

    def note(self, text: str) -> None:
        """Write a harness marker line into the log (not into the tail)."""
        if self._log_file:
            self._log_file.write(f"\n--- hil {time.strftime('%H:%M:%S')} {text} ---\n".encode())

    def tail(self, limit: int = 400) -> str:
        text = bytes(self._tail[-limit:]).decode("utf-8", "replace")
        return text.replace("\r", "")

    def expect_bytes(self, marker: bytes, timeout: float, what: str) -> bytes:
        """Wait for an exact marker; return what came before it. Fails fast with the console tail."""
        try:
            self.expect_exact(marker, timeout=timeout)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.transport.name}: no {what} within {timeout:g} s; console tail: {self.tail(200)!r}"
            ) from None
        return self.before

    def read_some(self, timeout: float | None) -> bytes:
        """Whatever is buffered, else what arrives within ``timeout`` (b"" if nothing)."""
        if self.buffer:
            data = self.buffer
            self._buffer = self.buffer_type()
            return data
        try:
            return self.read_nonblocking(self.maxread, timeout)
        except pexpect.TIMEOUT:
            return b""

    def flush_input(self) -> bytes:
        """Discard what is buffered or arriving right now (and keep it in the log)."""
        junk = self.buffer + self.transport.drain(quiet=0.02, limit=0.5)
        if junk:
            self._record(junk[len(self.buffer):])
        self._buffer = self.buffer_type()
        self.before = b""
        return junk

    def close(self) -> None:
        self.transport.close()
        if self._log_file:
            self._log_file.close()
            self._log_file = None
