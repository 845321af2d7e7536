"""MicroPython raw REPL and raw-paste client over a Console.

Protocol (MicroPython docs, "raw REPL"): Ctrl-A enters raw mode ("raw REPL; CTRL-B to exit\\r\\n>");
code then Ctrl-D runs it and the board answers "OK", stdout, \\x04, stderr (the traceback), \\x04, ">".
Raw-paste ("\\x05A\\x01" -> "R\\x01" + window) adds flow control so fast links never overrun the
board; boards that lack it fall back to plain raw mode with paced writes. Ctrl-D at an empty raw
prompt is a soft reset."""

from __future__ import annotations

import ast
import builtins
import re
import struct
from typing import NoReturn

import pexpect

from harness.config.boards import ConsoleSpec
from harness.errors import ConsoleTimeout
from harness.io import codepack
from harness.io.console import Console, printed_text

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_PROMPT = b">>> "
SOFT_REBOOT = b"soft reboot\r\n"
INTERRUPT_WAIT = 3.0  # default seconds for running code to answer Ctrl-C before it counts as unresponsive
PACK_MODULE = "hil_paste"  # firmware_py module whose unz() takes compressed code (codepack.py)
# bytes compressing must save to pay for the receiver's go-ahead (one more round trip): on mps2_an385
# a round trip costs about what 16 bytes of code do, and code that saved fewer ran no faster
PACK_MIN_SAVING = 16
# the frames exec(hil_paste.unz(...)) adds to a traceback: the command's own line, and unz's when
# compile() raised (a SyntaxError in the code); plain raw REPL has neither
_PACK_FRAMES = re.compile(
    rb'(Traceback \(most recent call last\):\r?\n)  File "<stdin>", line 1, in <module>\r?\n'
    rb'(?:  File "[^"\r\n]*hil_paste\.py", line \d+, in unz\r?\n(?=  File "<stdin>"))?'
)
_ERRNO = re.compile(r"^(?:\[Errno (\d+)\]|(\d+))\s*(.*)$")



def _end(output: bytes, limit: int = 400) -> str:
    """The end of what a board printed, for a one-line error (a flood must not fill the message)."""
    return repr(output[-limit:]) if len(output) <= limit else f"...{output[-limit:]!r}"

class BoardException(Exception):
    """An exception raised by code on the board. Subclasses also derive from the builtin of the
    same name (ValueError, OSError, ...) so host-side tests can catch them naturally."""

    type_name: str = "Exception"
    message: str = ""
    board_traceback: str = ""
    output: str = ""  # what the code printed before it raised (often the clue to why)
    OUTPUT_SHOWN = 2000  # characters of that output in the failure text (its end)

    def __str__(self) -> str:
        text = f"{self.message}\n--- board traceback ---\n{self.board_traceback.rstrip()}"
        if self.output.strip():
            shown = self.output[-self.OUTPUT_SHOWN :]
            cut = f" (last {len(shown)} of {len(self.output)} characters)" if len(shown) < len(self.output) else ""
            text += f"\n--- board output before the exception{cut} ---\n{shown.rstrip()}"
        return text


class ExecTimeout(Exception):
    """Code on the board ran past its timeout and was interrupted (a test failure, not infrastructure).
    ``output``: what the code printed before it was stopped, like BoardException.output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Unresponsive(ConsoleTimeout):
    """Code ran past its timeout and Ctrl-C did not bring the prompt back (some ports only poll the
    UART for input when idle, so running code cannot be interrupted)."""

    output: str = ""  # what the code printed before it stopped answering


class RunningCode:
    """Code running on the board: wait for the lines it prints, then for its end.

    Like MicroPython's multi-instance tests (a board prints NEXT when its server is listening),
    but the host is the other instance: ``running.wait_for("READY")`` then act, then
    ``running.finish()`` for the rest of the output (board exceptions are raised here)."""

    def __init__(self, repl: RawRepl) -> None:
        self.repl = repl
        self.output = bytearray()
        self.done = False

    def wait_for(self, marker: str, timeout: float = 10.0) -> str:
        """Output up to and including the marker. Fails if the code ends (or raises) first."""
        console = self.repl.console
        try:
            index = console.expect_exact([marker.encode(), b"\x04"], timeout=timeout)
        except pexpect.TIMEOUT:
            raise AssertionError(
                f"board did not print {marker!r} within {timeout:g} s; output so far: {_end(bytes(self.output))}"
            ) from None
        self.output += console.before
        if index == 1:  # the code ended (the \x04 closing stdout) without printing the marker
            err = console.expect_bytes(b"\x04", 5.0, "end of error output")
            console.expect_bytes(b">", 5.0, "raw REPL prompt")
            console.crash_watch = False
            self.done = True
            if err:
                raise parse_board_exception(self.repl.own_traceback(err).decode("utf-8", "replace"))
            raise AssertionError(f"board code ended without printing {marker!r}; output: {bytes(self.output)!r}")
        self.output += marker.encode()
        return self.output.decode("utf-8", "replace")

    def finish(self, timeout: float | None = None) -> str:
        """The whole output; raises the board's exception if the code raised."""
        if not self.done:
            out, err = self.repl.collect(timeout)
            self.output += out
            self.done = True
            if err:
                raise parse_board_exception(err.decode("utf-8", "replace"))
        return printed_text(bytes(self.output))


_exception_classes: dict[str, type[BoardException]] = {}


def _exception_class(type_name: str) -> type[BoardException]:
    if type_name not in _exception_classes:
        builtin = getattr(builtins, type_name, None)
        bases: tuple[type, ...] = (BoardException,)
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            bases = (BoardException, builtin)
        _exception_classes[type_name] = type(f"Board{type_name}", bases, {"type_name": type_name})
    return _exception_classes[type_name]


def parse_board_exception(stderr: str) -> BoardException:
    """Turn a MicroPython traceback into a host exception carrying it."""
    lines = [ln for ln in stderr.replace("\r", "").split("\n") if ln.strip()]
    last = lines[-1] if lines else "Exception: (no message)"
    type_name, _, message = last.partition(":")
    type_name = type_name.strip().rsplit(".", 1)[-1]
    if not type_name.isidentifier():
        type_name, message = "Exception", last
    message = message.strip()
    cls = _exception_class(type_name)
    if issubclass(cls, OSError):
        m = _ERRNO.match(message)
        errno = int(m.group(1) or m.group(2)) if m else None
        exc = cls(errno, m.group(3) if m else message) if errno is not None else cls(message)
    else:
        exc = cls(message)
    exc.type_name = type_name
    exc.message = f"{type_name}: {message}" if message else type_name
    exc.board_traceback = stderr
    return exc


def client_settings(console: ConsoleSpec) -> dict:
    """What RawRepl takes from a target's [console]: how it sends code (a recording keeps them)."""
    keys = ("raw_paste", "exec_timeout", "rx_buffer", "ack_module", "ack_every", "compress_min")
    return {key: getattr(console, key) for key in keys}


class RawRepl:
    def __init__(
        self, console: Console, *, raw_paste: bool = True, exec_timeout: float = 10.0,
        interrupt_wait: float = INTERRUPT_WAIT, rx_buffer: int = 0, ack_module: str = "", ack_every: int = 0,
        compress_min: int = 0,
    ) -> None:  # fmt: skip
        self.console = console
        self.use_raw_paste: bool | None = None if raw_paste else False  # None: not probed yet
        self.paste_window = 0  # the board's raw-paste window, once probed
        # a board without raw-paste whose UART drops what its buffer cannot hold (ConsoleSpec.rx_buffer)
        self.rx_buffer, self.ack_module, self.ack_every = rx_buffer, ack_module, ack_every
        self.compress_min = compress_min  # code this long or longer goes compressed (0: never)
        self.packed = False  # the running code came through hil_paste.unz (its tracebacks have exec's frame)
        self.exec_timeout = exec_timeout
        self.interrupt_wait = interrupt_wait  # past a timeout: how long Ctrl-C may take to stop the code
        self.in_raw = False

    # --- mode changes -------------------------------------------------------------------------
    def interrupt(self) -> None:
        self.console.send(b"\r\x03\x03")

    def enter_raw(self, timeout: float = 5.0) -> None:
        self.console.crash_watch = False
        self.interrupt()
        self.console.flush_input()
        self.console.send(b"\r\x01")
        self.console.expect_bytes(RAW_PROMPT, timeout, "raw REPL prompt")
        self.in_raw = True

    def exit_raw(self) -> None:
        self.console.send(b"\r\x02")
        self.in_raw = False

    def soft_reset(self, timeout: float = 10.0) -> None:
        """Ctrl-D at the raw prompt; the board comes back in raw mode, or (unix port: the process
        restarts) at the friendly prompt, from where we re-enter raw mode."""
        if not self.in_raw:
            self.enter_raw()
        self.console.crash_watch = False  # the unix port's reset is a new process: its banner is no crash
        self.console.send(b"\x04")
        try:
            index = self.console.expect_exact([RAW_PROMPT, FRIENDLY_PROMPT], timeout=timeout)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.console.transport.name}: board did not come back from soft reset within {timeout:g} s; "
                f"console tail: {self.console.tail(200)!r}"
            ) from None
        if index == 1:
            self.console.send(b"\x01")
            self.console.expect_bytes(RAW_PROMPT, timeout, "raw REPL prompt after soft reset")
        self.in_raw = True

    # --- running code -------------------------------------------------------------------------
    def send_code(self, code: str | bytes) -> None:
        """Start code running on the board (its output follows on the console). From here until
        the code ends, a crash signature on the console raises BoardCrashed."""
        if isinstance(code, str):
            code = code.encode()
        if not self.in_raw:
            self.enter_raw()
        self.packed = bool(self.compress_min and len(code) >= self.compress_min and self._send_packed(code))
        if not self.packed:
            self._send_plain(code)
        self.console.watch_crashes()  # the code runs from here

    def _send_plain(self, code: bytes) -> None:
        # Code that fits the board's raw-paste window goes as plain raw mode: a board takes a window
        # unpaced either way, and plain mode saves the paste request's round trip (a third of a
        # short exec). Longer code, and the first exec (it learns the window), use raw paste.
        fits = self.use_raw_paste and len(code) < self.paste_window
        if self.use_raw_paste is not False and not fits and self._try_raw_paste(code):
            pass
        elif self.rx_buffer and len(code) + 1 <= self.rx_buffer:  # the board's buffer holds it all
            self.console.send(code + b"\x04", paced=False)
            self.console.expect_bytes(b"OK", 5.0, "'OK' after sending code")
        elif self.ack_module and self._send_acked(code):
            pass
        else:
            self.console.send(code + b"\x04")
            self.console.expect_bytes(b"OK", 5.0, "'OK' after sending code")

    def _send_packed(self, code: bytes) -> bool:
        """Long code on a console whose every byte is slow (QEMU's CMSDK UART takes one per main
        loop pass): a short command starts PACK_MODULE.unz on the board, which says \\x01, reads the
        code deflated (codepack.py) from stdin and hands exec() it compiled as "<stdin>". False when
        compressing saves too little, or unz fails before it takes a byte (an image without it or
        without MicroPython's deflate module): then never again."""
        wbits, payload = codepack.encode(code)
        start = f"exec(__import__({PACK_MODULE!r}).unz({len(payload)},{wbits}))".encode()
        if len(start) + len(payload) + PACK_MIN_SAVING > len(code):
            return False
        console = self.console
        self._send_plain(start)
        # the receiver's go-ahead, or the command's end (\x04: it failed before reading a byte)
        index = self._receiver_answer(f"no answer from the board's receiver ({PACK_MODULE}.unz)")
        if index == 1:  # none of the code has run: it goes plain, and so does all code from now on
            err = console.expect_bytes(b"\x04", 5.0, "end of error output")
            console.expect_bytes(b">", 5.0, "raw REPL prompt")
            why = parse_board_exception(err.decode("utf-8", "replace")).message
            console.note(f"{PACK_MODULE}.unz does not run on the board ({why}): long code goes uncompressed")
            self.compress_min = 0
            return False
        console.send(payload)
        return True

    def own_traceback(self, err: bytes) -> bytes:
        """The traceback as plain raw REPL would print it: without the frames of unz's exec line."""
        return _PACK_FRAMES.sub(rb"\1", err, count=1) if self.packed else err

    def _receiver_answer(self, silent: str) -> int:
        """0: a board-side receiver (hil_paste) said \x01; 1: its command ended (\x04), it failed.
        Silence is a ConsoleTimeout saying ``silent``."""
        try:
            return self.console.expect_exact([b"\x01", b"\x04"], timeout=5.0)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.console.transport.name}: {silent}; console tail: {self.console.tail(200)!r}"
            ) from None

    def _send_acked(self, code: bytes) -> bool:
        """Code longer than the board's receive buffer, on a board without raw-paste: a short line
        (it fits the buffer) starts the board's receiver (ack_module.take), which runs the code once
        it has it all and says \x01 each ack_every bytes it has taken out of the buffer. The host
        keeps at most rx_buffer bytes unacknowledged: the buffer cannot overflow, however late the
        board gets to them. The code runs through exec() (one more frame in its tracebacks).
        False when the board lacks the module (an image without it): paced writes from then on."""
        console, every = self.console, self.ack_every
        start = f"exec(__import__({self.ack_module!r}).take({len(code)},{every}))".encode()
        if len(start) + 1 > self.rx_buffer:
            raise ConsoleTimeout(f"{console.transport.name}: console.rx_buffer {self.rx_buffer} cannot hold {start!r}")
        console.send(start + b"\x04", paced=False)
        console.expect_bytes(b"OK", 5.0, "'OK' after starting the receiver")
        acked, sent = 0, 0
        while acked < len(code):
            room = min(len(code), acked + self.rx_buffer) - sent
            if room > 0:
                console.send(code[sent : sent + room], paced=False)
                sent += room
            # an acknowledgement, or the receiver's own end (\x04: it failed, e.g. no such module)
            index = self._receiver_answer(
                f"board stopped acknowledging code at byte {acked} of {len(code)} ({self.ack_module}.take)"
            )
            if index == 1:  # e.g. MemoryError: the board cannot hold the code, as in plain raw REPL
                printed = console.before
                err = console.expect_bytes(b"\x04", 5.0, "end of error output")
                console.expect_bytes(b">", 5.0, "raw REPL prompt")
                self.in_raw = False  # the code's last bytes reach the raw prompt: entering raw mode clears them
                exc = parse_board_exception(err.decode("utf-8", "replace"))
                if acked == 0 and isinstance(exc, ImportError) and self.ack_module in exc.message:
                    console.note(f"{self.ack_module} is not on the board: long code goes paced by the clock")
                    self.ack_module = ""
                    self.enter_raw()
                    return False
                exc.output = printed_text(printed)
                raise exc
            if console.before:
                raise ConsoleTimeout(
                    f"{console.transport.name}: unexpected {console.before[-200:]!r} from the board's receiver "
                    f"({self.ack_module}.take) at byte {acked} of {len(code)}"
                )
            acked = min(len(code), acked + every)
        return True

    def collect(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Wait for running code to end; (stdout, stderr). Interrupts it past the timeout."""
        timeout = self.exec_timeout if timeout is None else timeout
        console = self.console
        try:
            out = console.read_until(b"\x04", timeout)
        except pexpect.TIMEOUT:
            self._recover_from_timeout(timeout)  # raises ExecTimeout (or Unresponsive)
        err = console.expect_bytes(b"\x04", 5.0, "end of error output")
        console.expect_bytes(b">", 5.0, "raw REPL prompt after exec")
        console.crash_watch = False
        return out, self.own_traceback(err)

    def exec_raw(self, code: str | bytes, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Run code; return (stdout, stderr) as bytes, without interpreting stderr."""
        self.send_code(code)
        return self.collect(timeout)

    def spawn(self, code: str | bytes) -> RunningCode:
        """Start code and return at once: for two-party tests where the host acts while the board
        runs (the board prints markers, the host waits for them)."""
        self.send_code(code)
        return RunningCode(self)

    def exec(self, code: str | bytes, timeout: float | None = None) -> str:
        """Run code; return its stdout; raise the board's exception as a host BoardException."""
        out, err = self.exec_raw(code, timeout)
        text = printed_text(out)
        if err:
            exc = parse_board_exception(err.decode("utf-8", "replace"))
            exc.output = text  # kept: what it printed before raising is part of the story
            raise exc
        return text

    def eval(self, expression: str, timeout: float | None = None):
        """Evaluate on the board and return the value (via repr/literal_eval)."""
        text = self.exec(f"print(repr({expression}))", timeout).strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def _try_raw_paste(self, code: bytes) -> bool:
        self.console.send(b"\x05A\x01")
        try:
            index = self.console.expect_exact([b"R\x01", b"R\x00", RAW_PROMPT[-14:]], timeout=5.0)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.console.transport.name}: no answer to raw-paste request; "
                f"console tail: {self.console.tail(200)!r}"
            ) from None
        if index != 0:  # R\x00: understood, unsupported; prompt: not understood. Plain raw from now on.
            self.use_raw_paste = False
            return False
        self.use_raw_paste = True
        window = self.paste_window = struct.unpack("<H", self._read_exact(2))[0]
        remaining, i = window, 0
        while i < len(code):
            # Absorb window grants (\x01) that have arrived; block only when the window is used up.
            flags = self.console.read_some(timeout=5.0 if remaining == 0 else 0)
            if remaining == 0 and not flags:
                raise ConsoleTimeout(
                    f"{self.console.transport.name}: board stopped granting raw-paste window; "
                    f"console tail: {self.console.tail(200)!r}"
                )
            for flag in flags:
                if flag == 0x01:
                    remaining += window
                elif flag == 0x04:  # board ended the paste early (e.g. out of memory): acknowledge
                    self.console.send(b"\x04")
                    return True
                else:
                    raise ConsoleTimeout(f"{self.console.transport.name}: unexpected {flags!r} during raw paste")
            chunk = code[i : i + remaining]
            self.console.send(chunk)
            remaining -= len(chunk)
            i += len(chunk)
        self.console.send(b"\x04")
        # Grants (\x01) may still arrive before the board's \x04 acknowledgement.
        self.console.expect_bytes(b"\x04", 5.0, "raw-paste end acknowledgement")
        return True

    def _read_exact(self, n: int, timeout: float = 5.0) -> bytes:
        try:
            self.console.expect(re.compile(b"(?s)" + b"." * n), timeout=timeout)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.console.transport.name}: board stopped answering; console tail: {self.console.tail(200)!r}"
            ) from None
        if self.console.before:
            raise ConsoleTimeout(f"{self.console.transport.name}: unexpected output {self.console.before!r}")
        return self.console.after

    def _recover_from_timeout(self, timeout: float) -> NoReturn:
        self.console.send(b"\x03")
        try:  # what the code printed, up to the end of its output (the unconsumed bytes are kept)
            printed = self.console.read_until(b"\x04", self.interrupt_wait)
        except pexpect.TIMEOUT:
            self.in_raw = False
            exc = Unresponsive(
                f"{self.console.transport.name}: board stopped answering (no output end within {timeout:g} s, "
                f"Ctrl-C not answered within {self.interrupt_wait:g} s); console tail: {self.console.tail(200)!r}"
            )
            exc.output = printed_text(self.console.before)
            raise exc from None
        partial = printed_text(printed)
        self.console.expect_bytes(b"\x04", 3.0, "end of error output")
        self.console.expect_bytes(b">", 3.0, "raw REPL prompt")
        self.console.crash_watch = False
        raise ExecTimeout(
            f"code on the board ran past {timeout:g} s and was interrupted; output so far: {_end(partial)}",
            output=partial,
        )
