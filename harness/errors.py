"""Error types. Infrastructure errors (the board or its plumbing broke) are kept apart from
test failures (the code on the board misbehaved) all the way to the JUnit report."""

from __future__ import annotations


class HarnessError(Exception):
    """A user-facing error: printed as one line, never as a traceback."""


class ConfigError(HarnessError):
    """A bad target or lab file: the message names the file, the key and the fix."""


class InfrastructureError(HarnessError):
    """The board could not be built, booted or reached. Reported as JUnit <error>."""


class BuildError(InfrastructureError):
    """An image could not be built."""


class BootError(InfrastructureError):
    """The board did not reach a ready REPL; the message carries the console tail."""


class BoardDied(InfrastructureError):
    """The board (QEMU, process or serial port) went away while in use."""


class BoardCrashed(BoardDied):
    """A crash signature of the board (its target file's console.crash: a HardFault dump, a kernel
    panic, a fatal error, the machine ending itself) appeared while code ran. The board counts as
    dead and is restarted before its next use, but the verdict is the code's: in a test's call
    phase this is a test failure (JUnit <failure>, not retried), with the dump in its text."""

    OUTPUT_SHOWN = 2000  # characters of the code's output before the crash in the text (its end)

    def __init__(self, signature: str, dump: str, where: str = "", output: str = "") -> None:
        self.signature, self.dump, self.where, self.output = signature, dump, where, output
        super().__init__(signature, dump, where, output)

    def __str__(self) -> str:
        head = f"{self.where}: " if self.where else ""
        text = f"{head}board crashed ({self.signature}) while running code\n--- crash dump ---\n{self.dump}"
        if self.output.strip():
            text += f"\n--- board output before the crash ---\n{self.output[-self.OUTPUT_SHOWN :].rstrip()}"
        return text

    def located(self, where: str) -> BoardCrashed:
        """The same crash, said of ``where`` (the board's name)."""
        return BoardCrashed(self.signature, self.dump, where, self.output)


class ConsoleTimeout(InfrastructureError):
    """The board stopped answering on its console."""


def one_line(text: object, limit: int = 400) -> str:
    """``text`` (an exception, a tool's output) as one line of at most ``limit`` characters: errors
    are told in one line, and a long output must not flood it."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
