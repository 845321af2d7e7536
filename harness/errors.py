"""Error types. Infrastructure errors (the board or its plumbing broke) are kept apart from
test failures (the code on the board misbehaved) all the way to the JUnit report."""


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


class ConsoleTimeout(InfrastructureError):
    """The board stopped answering on its console."""
