from __future__ import annotations

import errno

import pytest

from harness.errors import ConsoleTimeout
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
