"""A scripted MicroPython raw REPL in Python, for unit tests of the protocol client only.

Never evidence that a suite passes: suites run on real boards. This lets tests drive exact
byte sequences (raw-paste windows, unsupported raw-paste, hangs, garbage) deterministically."""

from __future__ import annotations

import contextlib
import io
import traceback

from harness.io.transport import Transport

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"


class FakeRawBoard(Transport):
    def __init__(self, raw_paste: str = "yes", window: int = 16, hang: bool = False, **pacing) -> None:
        super().__init__(**pacing)
        self.name = "fake"
        self.raw_paste = raw_paste  # yes | understood-no | unknown
        self.window = window
        self.hang = hang
        self.out = bytearray()
        self.writes: list[bytes] = []
        self.mode = "friendly"
        self.code = bytearray()
        self.paste_left = 0
        self.pasting = False
        self.max_unacked = 0
        self.globals: dict = {}
        self.resets = 0

    # Transport API
    def read(self, size: int, timeout: float | None) -> bytes:
        data = bytes(self.out[:size])
        del self.out[:size]
        return data

    def _write(self, data: bytes) -> None:
        self.writes.append(data)
        if self.hang:
            return
        for b in data:
            self._byte(bytes([b]))

    def close(self) -> None:
        pass

    # the board
    def _byte(self, b: bytes) -> None:
        if self.pasting:
            if b == b"\x04":
                self.pasting = False
                self.out += b"\x04"
                self._run()
                return
            self.code += b
            self.paste_left -= 1
            self.max_unacked = max(self.max_unacked, self.window - self.paste_left)
            if self.paste_left < 0:
                raise AssertionError("client overran the raw-paste window")
            if self.paste_left == 0:  # board consumed its buffer: grant another window
                self.paste_left = self.window
                self.out += b"\x01"
            return
        if b == b"\x01" and self.mode == "raw" and self.code.endswith(b"\x05A"):
            del self.code[-2:]
            self._paste_request()
            return
        if b == b"\x01":
            self.mode, self.code = "raw", bytearray()
            self.out += (b"\r\n" if self.mode == "friendly" else b"") + RAW_BANNER
        elif b == b"\x02":
            self.mode = "friendly"
            self.out += b"\r\nMicroPython v1.25.0 on 2025-01-01; fake with Python\r\n>>> "
        elif b == b"\x03":
            self.code = bytearray()
            if self.mode == "friendly":
                self.out += b"\r\n>>> "
        elif b == b"\x04" and self.mode == "raw":
            if not self.code:
                self.resets += 1
                self.globals = {}
                self.out += b"OK\r\nsoft reboot\r\n" + RAW_BANNER
                return
            self.out += b"OK"
            self._run()
        elif self.mode == "raw":
            self.code += b

    def _paste_request(self) -> None:
        if self.raw_paste == "yes":
            self.out += b"R\x01" + self.window.to_bytes(2, "little") + b""
            self.pasting, self.paste_left = True, self.window
        elif self.raw_paste == "understood-no":
            self.out += b"R\x00"
        else:  # 1.9-era firmware: \x01 resets the line and reprints the banner
            self.code = bytearray()
            self.out += RAW_BANNER

    def _run(self) -> None:
        code, self.code = bytes(self.code).decode(), bytearray()
        stdout, stderr = io.StringIO(), ""
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(code, "<stdin>", "exec"), self.globals)
        except Exception as exc:
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            stderr = f'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n{tb}\r\n'
        self.out += stdout.getvalue().replace("\n", "\r\n").encode() + b"\x04" + stderr.encode() + b"\x04>"
