"""Console: pexpect matching over a Transport, the log file (with harness markers), the tail kept
in memory for error messages, and byte counts."""

from __future__ import annotations

import pytest

from harness.errors import ConsoleTimeout
from harness.io.console import TAIL_BYTES, Console
from harness.io.transport import Transport


class ScriptedTransport(Transport):
    """Hands out queued chunks one read at a time; records what was written."""

    name = "fake0"

    def __init__(self, *chunks: bytes, **pacing) -> None:
        super().__init__(**pacing)
        self.chunks = list(chunks)
        self.writes: list[bytes] = []
        self.closed = False

    def read(self, size: int, timeout: float | None) -> bytes:
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            chunk, rest = chunk[:size], chunk[size:]
            self.chunks.insert(0, rest)
        return chunk

    def _write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True


def test_expect_returns_what_came_before_and_counts_bytes(tmp_path):
    transport = ScriptedTransport(b"MicroPython v1.25", b".0 on 2025-04-15\r\n>>> ", b"rest")
    console = Console(transport, tmp_path / "board.log", timeout=0.2)
    before = console.expect_bytes(b">>> ", timeout=0.5, what="prompt")
    assert before == b"MicroPython v1.25.0 on 2025-04-15\r\n"
    assert console.received == len(b"MicroPython v1.25.0 on 2025-04-15\r\n>>> ")
    assert console.read_some(0.1) == b"rest"  # what follows the prompt is the next read
    assert console.read_some(0.05) == b""  # then nothing: b"" rather than a pexpect TIMEOUT
    assert console.received == len(b"MicroPython v1.25.0 on 2025-04-15\r\n>>> rest")
    console.close()
    assert transport.closed
    assert (tmp_path / "board.log").read_bytes() == b"MicroPython v1.25.0 on 2025-04-15\r\n>>> rest"


def test_send_encodes_text_and_goes_through_pacing():
    transport = ScriptedTransport(write_chunk=4)
    console = Console(transport)
    assert console.send("print(1)\r") == 9
    assert console.send(b"\x03") == 1
    assert transport.writes == [b"prin", b"t(1)", b"\r", b"\x03"]


def test_link_events_become_log_markers_but_not_tail(tmp_path):
    transport = ScriptedTransport(b"before\r\n", b"after")
    console = Console(transport, tmp_path / "b.log", timeout=0.2)
    console.expect_bytes(b"before\r\n", 0.5, "first line")
    transport.event("reconnected to fake0")
    console.expect_bytes(b"after", 0.5, "second line")
    console.close()
    log = (tmp_path / "b.log").read_bytes().decode()
    assert log.startswith("before\r\n\n--- hil ")
    assert log.rstrip().endswith("reconnected to fake0 ---\nafter")
    assert transport.events == ["reconnected to fake0"]
    assert "hil" not in console.tail() and console.tail() == "before\nafter"  # \r dropped in the tail


def test_tail_is_bounded_and_limited():
    big = b"".join(f"{i:05d}\n".encode() for i in range(1000))
    console = Console(ScriptedTransport(big), timeout=0.2)
    assert console.read_some(0.1)  # maxread 4096 bytes per read
    while console.read_some(0.05):
        pass
    assert console.received == len(big)
    assert len(console._tail) == TAIL_BYTES  # only the last 2 KiB kept in memory
    assert console.tail(12) == "00998\n00999\n"
    assert console.tail().endswith("00999\n") and len(console.tail()) == 400


def test_timeout_is_one_line_naming_port_what_and_tail():
    console = Console(ScriptedTransport(b"Traceback (most recent call last):\r\n  boom\r\n"), timeout=0.2)
    with pytest.raises(ConsoleTimeout) as info:
        console.expect_bytes(b">>> ", timeout=0.2, what="REPL prompt")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("fake0: no REPL prompt within 0.2 s; console tail: ")
    assert "boom" in message


def test_flush_input_discards_but_logs(tmp_path):
    transport = ScriptedTransport(b"junk1", b"junk2")
    console = Console(transport, tmp_path / "f.log", timeout=0.2)
    assert console.read_some(0.1) == b"junk1"
    console.buffer = b"buffered"  # e.g. left over after an expect
    assert console.flush_input() == b"bufferedjunk2"
    assert console.buffer == b"" and console.before == b""
    assert console.read_some(0.05) == b""
    console.close()
    assert (tmp_path / "f.log").read_bytes() == b"junk1junk2"  # buffered bytes were logged when read
