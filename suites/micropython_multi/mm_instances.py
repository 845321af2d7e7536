"""A board of a multi-board pairing as an mm_protocol instance (through the duts fixture's Role,
as run-multitests.py's PyInstancePyboard drives a board's raw REPL)."""

from __future__ import annotations

import base64
from pathlib import Path

import pexpect

from harness.io.console import printed_text
from harness.pytest.multi import Node, Role


class BoardInstance:
    """One role's board: the script runs through its raw REPL (a Role of the duts fixture, so the
    fixture stops it if the test ends first); lines are read off its console as pyboard.py's
    read_until(b"\\r\\n" or b"\\x04") reads them (L250-266)."""

    def __init__(self, node: Node, label: str) -> None:
        self.node, self.label = node, label
        self.role: Role | None = None
        self.finished = True

    def __str__(self) -> str:
        return self.node.board.name

    def start(self, script: bytes) -> None:
        running = self.node.board.spawn(script.decode("utf-8", "replace"))
        self.role = Role(self.node, self.label, running)
        self.node.roles.append(self.role)
        self.finished = False

    def readline(self, timeout: float) -> tuple[str | None, str | None]:
        if self.finished or self.role is None:
            return None, None
        running = self.role.running
        console = running.repl.console
        try:
            index = console.expect_exact([b"\n", b"\x04"], timeout=max(timeout, 0.001))
        except pexpect.TIMEOUT:
            return None, None
        before = bytes(console.before)
        running.output += before
        if index == 0:
            running.output += b"\n"
            return printed_text(before).rstrip(), None
        # the script ended: its stderr (the traceback) up to the second \x04, then the prompt
        err = console.expect_bytes(b"\x04", 5.0, "end of error output")
        console.expect_bytes(b">", 5.0, "raw REPL prompt")
        console.crash_watch = False
        running.done = True
        self.finished = True
        out, err_text = printed_text(before).rstrip(), printed_text(err)
        if not out and not err_text:
            return None, None
        return out, err_text

    def write(self, data: bytes) -> None:
        self.node.board.console.send(data)

    def is_finished(self) -> bool:
        return self.finished

    def stop(self) -> None:
        """Interrupt a script still running (pyboard: \\r\\x03), and collect it."""
        if self.role is not None and not self.finished:
            self.role.stop()
            self.finished = True

    def wait_reboot(self, delay_ms: float) -> bool:
        # A harness board that resets is restarted by the pool between tests, not resumed inside
        # one; multi_net never asks for it (multi_bluetooth does). As a failed wait upstream: the
        # WAIT_FOR_REBOOT line stays in the output and the test fails.
        self.node.board.console_note("micropython_multi: expect_reboot() is not supported by the harness")
        return False


DATA_SUFFIXES = (".der", ".pem", ".bin", ".txt")  # files a multi_net test opens from its directory


def data_files(test_dir: Path, source: bytes) -> list[Path]:
    """The files next to the test that its source names (multi_net's TLS tests open ec_cert.der ...)."""
    return sorted(p for p in test_dir.iterdir() if p.suffix in DATA_SUFFIXES and p.name.encode() in source)


def put_data_files(board, files: list[Path]) -> None:
    """Write them into the board's current directory, as a run-multitests.py user copies them onto a
    device (mpremote cp): a unix-port instance runs in the test's directory and finds them there.
    Only for boards with a file system (capability fs); without one the test finds no file and
    prints SKIP, as it does under run-multitests.py."""
    for f in files:
        data = base64.b64encode(f.read_bytes())
        board.exec(f"import binascii\nwith open({f.name!r}, 'wb') as _f:\n    _f.write(binascii.a2b_base64({data!r}))")
