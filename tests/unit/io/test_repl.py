from __future__ import annotations

import errno
import re

import pytest

from harness.errors import ConsoleTimeout
from harness.io import codepack
from harness.io.console import Console
from harness.io.repl import BoardException, RawRepl, parse_board_exception
from tests.fakeboard import FakeRawBoard


def make(**kw) -> tuple[RawRepl, FakeRawBoard]:
    board = FakeRawBoard(**{k: v for k, v in kw.items() if k in ("raw_paste", "window", "hang")})
    repl = RawRepl(Console(board, timeout=0.5), raw_paste=kw.get("use_paste", True), exec_timeout=0.5)
    return repl, board


def test_exec_returns_stdout_and_keeps_state():
    repl, _ = make()
    repl.exec("x = 20")
    assert repl.exec("print(x + 22)") == "42\n"


def test_eval_literal_values():
    repl, _ = make()
    assert repl.eval("{'a': (1, b'\\x00'), 'b': None}") == {"a": (1, b"\x00"), "b": None}


def test_raw_paste_respects_window():
    repl, board = make(window=16)
    code = "total = 0\n" + "".join(f"total += {i}\n" for i in range(40)) + "print(total)"
    assert repl.exec(code) == f"{sum(range(40))}\n"
    assert repl.use_raw_paste is True
    assert board.max_unacked <= 16  # never more than one window in flight


def test_falls_back_when_raw_paste_understood_but_unsupported():
    repl, _ = make(raw_paste="understood-no")
    assert repl.exec("print('a')") == "a\n"
    assert repl.use_raw_paste is False
    assert repl.exec("print('b')") == "b\n"


def test_falls_back_on_firmware_that_predates_raw_paste():
    repl, board = make(raw_paste="unknown")
    assert repl.exec("print('old')") == "old\n"
    assert repl.use_raw_paste is False
    assert repl.exec("print('again')") == "again\n"
    assert sum(b"\x05A\x01" in w for w in board.writes) == 1  # probed once, then plain raw


def test_raw_paste_disabled_by_config_never_probes():
    repl, board = make(use_paste=False)
    repl.exec("print(1)")
    assert not any(b"\x05" in w for w in board.writes)


def test_board_exception_becomes_host_builtin_subclass():
    repl, _ = make()
    with pytest.raises(KeyError) as info:
        repl.exec("{}['missing']")
    assert isinstance(info.value, BoardException)
    assert "Traceback" in info.value.board_traceback


def test_board_exception_keeps_the_output_printed_before_it():
    repl, _ = make()
    with pytest.raises(KeyError) as info:
        repl.exec("print('step 1 done')\nprint('step 2: looking up')\n{}['missing']")
    assert info.value.output == "step 1 done\nstep 2: looking up\n"
    text = str(info.value)  # what a test report shows
    assert "--- board output before the exception ---\nstep 1 done\nstep 2: looking up" in text
    assert text.index("board traceback") < text.index("board output before")


def test_long_output_before_an_exception_shows_its_end():
    exc = parse_board_exception("Traceback (most recent call last):\nValueError: bad\n")
    exc.output = "x" * 5000 + "the end\n"
    text = str(exc)
    assert "(last 2000 of 5008 characters)" in text and text.rstrip().endswith("the end")
    assert "output before" not in str(parse_board_exception("ValueError: quiet\n"))


def test_soft_reset_clears_globals():
    repl, board = make()
    repl.exec("y = 1")
    repl.soft_reset()
    assert board.resets == 1
    with pytest.raises(NameError):
        repl.exec("y")


def test_board_that_never_answers_fails_fast_with_tail():
    repl, _ = make(hang=True)
    with pytest.raises(ConsoleTimeout, match="raw REPL prompt"):
        repl.enter_raw(timeout=0.2)


def test_paced_writes_are_chunked():
    board = FakeRawBoard(write_chunk=8, write_gap_ms=0)
    repl = RawRepl(Console(board), raw_paste=False)
    repl.exec("print('%s')" % ("z" * 40))
    assert max(len(w) for w in board.writes) <= 8


@pytest.mark.parametrize(
    ("stderr", "type_", "errno_", "message"),
    [
        ("Traceback...\r\nOSError: [Errno 104] ECONNRESET\r\n", OSError, errno.ECONNRESET,
         "OSError: [Errno 104] ECONNRESET"),
        ("Traceback...\r\nOSError: 11\r\n", OSError, errno.EAGAIN, "OSError: 11"),
        ("Traceback...\nValueError: bad value\n", ValueError, None, "ValueError: bad value"),
        ("MemoryError: memory allocation failed, allocating 1184 bytes\r\n", MemoryError, None, None),
        ("Traceback...\nKeyboardInterrupt: \n", BoardException, None, "KeyboardInterrupt"),
        ("Traceback...\nmymod.CustomError: x\n", BoardException, None, "CustomError: x"),
    ],
)
def test_parse_board_exception(stderr, type_, errno_, message):
    exc = parse_board_exception(stderr)
    assert isinstance(exc, type_) and isinstance(exc, BoardException)
    if errno_ is not None:
        assert exc.errno == errno_
    if message is not None:
        assert exc.message == message
    assert exc.board_traceback == stderr


def test_code_that_ignores_ctrl_c_is_unresponsive_after_the_interrupt_wait():
    """Past its timeout running code gets ``interrupt_wait`` seconds to answer Ctrl-C: a board
    that can be restarted is given little (the restart is what stops it), not a fixed 3 s."""
    import time

    from harness.io.repl import Unresponsive

    board = FakeRawBoard(hang=True)  # code that swallows Ctrl-C: no output end, ever
    repl = RawRepl(Console(board, timeout=0.5), raw_paste=False, exec_timeout=0.2, interrupt_wait=0.3)
    repl.in_raw = True
    started = time.monotonic()
    with pytest.raises(Unresponsive, match=r"Ctrl-C not answered within 0.3 s"):
        repl.collect()
    assert time.monotonic() - started < 0.2 + 0.3 + 0.3
    assert board.writes == [b"\x03"] and not repl.in_raw


def test_default_interrupt_wait_is_kept_for_boards_that_cannot_be_restarted():
    from harness.io.repl import INTERRUPT_WAIT

    repl, _ = make()
    assert repl.interrupt_wait == INTERRUPT_WAIT == 3.0


def test_code_within_the_window_goes_plain_once_the_window_is_known():
    """The first exec learns the raw-paste window; later code that fits it is sent in plain raw mode
    (one round trip fewer: no paste request), longer code still pastes window by window."""
    repl, board = make(window=32)
    repl.exec("x = 1")
    assert repl.use_raw_paste is True and repl.paste_window == 32
    board.writes.clear()
    assert repl.exec("print(x + 1)") == "2\n"
    assert board.writes == [b"print(x + 1)\x04"]
    board.writes.clear()
    code = "total = 0\n" + "".join(f"total += {i}\n" for i in range(20)) + "print(total)"
    assert repl.exec(code) == f"{sum(range(20))}\n"
    assert board.writes[0] == b"\x05A\x01" and board.max_unacked <= 32


class _Runaway(FakeRawBoard):
    """Prints, then runs until Ctrl-C (which it answers with a KeyboardInterrupt)."""

    def _run(self) -> None:
        if b"while True" not in self.code:
            return super()._run()
        self.code = bytearray()
        self.out += b"started\r\nstill going\r\n"

    def _byte(self, b: bytes) -> None:
        if b == b"\x03" and self.mode == "raw":
            self.out += b"\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04>"
            return
        super()._byte(b)


def test_exec_timeout_carries_what_the_code_printed():
    from harness.io.repl import ExecTimeout

    board = _Runaway()
    repl = RawRepl(Console(board, timeout=0.5), raw_paste=False, exec_timeout=0.2)
    with pytest.raises(ExecTimeout) as info:
        repl.exec("print('started')\nwhile True: pass")
    assert info.value.output == "started\nstill going\n"
    assert "output so far: " in str(info.value)
    assert repl.exec("print('next')") == "next\n"  # back at the raw prompt


class AckingBoard(FakeRawBoard):
    """A 1.9-era board (no raw-paste) whose UART keeps ``rx_buffer`` bytes and drops the rest, with
    firmware_py/hil_paste.py: during take() the bytes wait in its buffer until the board gets to
    them, which is when the host reads (a board slower than any host); each full window (and the
    end) is acknowledged with \\x01."""

    TAKE = re.compile(rb"^exec\(__import__\('hil_paste'\)\.take\((\d+),(\d+)\)\)$")

    def __init__(self, rx_buffer: int = 63, has_module: bool = True, **kw) -> None:
        super().__init__(raw_paste="unknown", **kw)
        self.rx_buffer, self.has_module = rx_buffer, has_module
        self.ring = bytearray()
        self.taking: tuple[int, int] | None = None  # (bytes wanted, window)
        self.taken = bytearray()
        self.peak = 0  # most bytes ever waiting in the buffer

    def _write(self, data: bytes) -> None:
        if self.taking is None:
            m = self.TAKE.match(bytes(self.code) + data.rstrip(b"\x04")) if data.endswith(b"\x04") else None
            if m and not self.has_module:  # an image without it: what follows lands at the raw prompt
                self.writes.append(data)
                self.code = bytearray()
                self.out += b"OK\x04Traceback (most recent call last):\r\n"
                self.out += b"ImportError: no module named 'hil_paste'\r\n\x04>"
                return
            if m:
                self.writes.append(data)
                self.code = bytearray()
                self.out += b"OK"
                self.taking = (int(m.group(1)), int(m.group(2)))
                return
            super()._write(data)
            return
        self.writes.append(data)
        self.ring += data
        self.peak = max(self.peak, len(self.ring))
        assert len(self.ring) <= self.rx_buffer, "host overran the board's receive buffer"

    def read(self, size: int, timeout: float | None) -> bytes:
        if self.taking is not None and self.ring:
            want, every = self.taking
            got = len(self.taken)
            end = min(want, got - got % every + every)
            part = self.ring[: end - got]
            del self.ring[: len(part)]
            self.taken += part
            if len(self.taken) == end:
                self.out += b"\x01"
            if len(self.taken) == want:
                self.taking = None
                self.code, self.taken = self.taken, bytearray()
                self._run()
        return super().read(size, timeout)


def acking_repl(board: AckingBoard) -> RawRepl:
    return RawRepl(Console(board, timeout=0.5), raw_paste=False, exec_timeout=0.5,
                   rx_buffer=board.rx_buffer, ack_module="hil_paste", ack_every=21)  # fmt: skip


def test_long_code_waits_for_acknowledgements_and_never_overruns_the_buffer():
    board = AckingBoard(write_chunk=16, write_gap_ms=1000)  # the clock pacing is not used for it
    repl = acking_repl(board)
    code = "x = [" + ", ".join(str(i) for i in range(400)) + "]\nprint(sum(x))"
    assert repl.exec(code) == f"{sum(range(400))}\n"
    assert board.peak == board.rx_buffer  # the host kept the buffer as full as it may be, no fuller
    assert repl.exec("print('short')") == "short\n"  # up to the buffer's size: at once, no receiver
    assert board.taking is None and not board.ring


def test_a_receiver_that_fails_raises_the_board_exception_and_clears_the_line():
    board = AckingBoard()
    repl = acking_repl(board)
    real_read = board.read

    def failing(size, timeout):  # the board runs out of memory after the first window
        if board.taking is not None and len(board.taken) >= 21:
            board.taking, board.ring = None, bytearray(b"leftover")
            board.code = bytearray(b"leftover")  # the rest of the code reaches the raw prompt
            board.out += b"\x04Traceback (most recent call last):\r\nMemoryError: memory allocation failed\r\n\x04>"
        return real_read(size, timeout)

    board.read = failing
    with pytest.raises(MemoryError, match="memory allocation failed"):
        repl.exec("print(1)\n" * 40)
    board.read = real_read
    assert repl.exec("print(2)") == "2\n"  # raw mode entered afresh: the leftover bytes are gone


def test_a_board_without_the_receiver_module_gets_paced_writes():
    board = AckingBoard(has_module=False, write_chunk=16, write_gap_ms=0)
    repl = acking_repl(board)
    code = "x = [" + ", ".join(str(i) for i in range(50)) + "]\nprint(sum(x))"
    assert repl.exec(code) == f"{sum(range(50))}\n"  # the stray start of the code was cleared
    assert repl.ack_module == "" and repl.exec(code) == f"{sum(range(50))}\n"  # not asked again
    assert max(len(w) for w in board.writes[-10:]) <= 16  # paced by the clock instead


class PackingBoard(FakeRawBoard):
    """A board with firmware_py/hil_paste.py's unz(): after the command it says \\x01 and takes the
    next N bytes as escaped raw deflate; the code then runs, its tracebacks with exec's frame."""

    UNZ = re.compile(rb"^exec\(__import__\('hil_paste'\)\.unz\((\d+),(\d+)\)\)$")

    def __init__(self, fails: bytes = b"", **kw) -> None:
        super().__init__(**kw)
        self.fails = fails  # the error unz() raises before it takes a byte (b"": it works)
        self.unzipping: tuple[int, int] | None = None  # (bytes wanted, window bits)
        self.wire = bytearray()
        self.packed_runs = 0

    def _write(self, data: bytes) -> None:
        if self.unzipping is None:
            super()._write(data)
            return
        self.writes.append(data)
        assert b"\x03" not in data, "Ctrl-C on the wire: the board would raise KeyboardInterrupt"
        self.wire += data
        want, wbits = self.unzipping
        assert len(self.wire) <= want, "more bytes than unz() takes: the rest would reach the raw prompt"
        if len(self.wire) == want:
            self.unzipping = None
            self.code, self.wire = bytearray(codepack.decode(bytes(self.wire), wbits)), bytearray()
            self.packed_runs += 1
            self._run()
            self.out[:] = self.out.replace(  # the frame of the command's exec(), before the code's own
                b'Traceback (most recent call last):\r\n',
                b'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n',
            )

    def _run(self) -> None:
        m = self.UNZ.match(bytes(self.code))
        if m and self.fails:
            self.code = bytearray()
            self.out += b"\x04Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n"
            self.out += self.fails + b"\r\n\x04>"
        elif m:
            self.code = bytearray()
            self.unzipping = (int(m.group(1)), int(m.group(2)))
            self.out += b"\x01"
        else:
            super()._run()


LONG = "data = " + repr(bytes(range(256)) * 4) + "\n"
LONG += "".join(f"v{i} = {i}\n" for i in range(200)) + "print(len(data), v199)"


@pytest.mark.parametrize("use_paste", [True, False])
def test_long_code_goes_compressed_with_no_ctrl_c_on_the_wire(use_paste):
    board = PackingBoard(window=64)
    repl = RawRepl(Console(board, timeout=0.5), raw_paste=use_paste, exec_timeout=0.5, compress_min=200)
    assert repl.exec(LONG) == "1024 199\n"
    assert board.packed_runs == 1 and repl.packed
    assert sum(len(w) for w in board.writes) < len(LONG) / 2
    assert repl.exec("print('short')") == "short\n" and board.packed_runs == 1  # below compress_min: plain
    assert repl.exec(LONG + "\n") == "1024 199\n" and board.packed_runs == 2


def test_compression_off_sends_the_code_itself():
    board = PackingBoard()
    repl = RawRepl(Console(board, timeout=0.5), exec_timeout=0.5)
    assert repl.exec(LONG) == "1024 199\n"
    assert board.packed_runs == 0 and not repl.packed


def test_code_that_does_not_shrink_goes_plain():
    board = PackingBoard()
    repl = RawRepl(Console(board, timeout=0.5), exec_timeout=0.5, compress_min=10)
    assert repl.exec("print(6 * 7)") == "42\n"  # deflate plus the command: longer than the code
    assert board.packed_runs == 0


def test_a_compressed_codes_traceback_is_the_one_plain_code_gets():
    plain_board, packing_board = PackingBoard(), PackingBoard()
    tracebacks = []
    for board, compress_min in ((plain_board, 0), (packing_board, 200)):
        repl = RawRepl(Console(board, timeout=0.5), exec_timeout=0.5, compress_min=compress_min)
        with pytest.raises(ValueError, match="nope") as info:
            repl.exec(LONG + "\nraise ValueError('nope')")
        assert info.value.output == "1024 199\n"
        tracebacks.append(info.value.board_traceback)
    assert packing_board.packed_runs == 1
    assert tracebacks[0] == tracebacks[1]
    assert tracebacks[0].count("File ") == 1


@pytest.mark.parametrize(
    "fails", [b"ImportError: no module named 'hil_paste'", b"ImportError: no module named 'deflate'"]
)
def test_a_board_without_unz_gets_the_code_uncompressed_and_is_not_asked_again(fails):
    board = PackingBoard(fails=fails)
    repl = RawRepl(Console(board, timeout=0.5), exec_timeout=0.5, compress_min=200)
    assert repl.exec(LONG) == "1024 199\n"
    assert repl.compress_min == 0 and not repl.packed
    assert repl.exec(LONG) == "1024 199\n"
    assert b"".join(board.writes).count(b"unz(") == 1
