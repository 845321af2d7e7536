"""What every launcher is: start a board and hand back a Transport to its console (twister's
'device adapter', labgrid's power + console drivers folded into one small object). Optional
abilities (hard reset, waiting for the machine to exit, per-test packet capture, snapshots) are
asked for through the interface, never by checking a launcher's class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from harness.config.boards import BoardSpec
from harness.errors import InfrastructureError
from harness.images import Image
from harness.io.transport import Transport

if TYPE_CHECKING:  # python-can alone takes ~0.25 s to import: every pytest worker would pay it
    from harness.net.boardnet import BoardNet
    from harness.net.canlink import SlcanLink


@dataclass
class LaunchContext:
    """What a launcher gets besides the board's spec: the built image and where to work."""

    image: Image
    workdir: Path
    firmware_py: Path
    log: Callable[[str], None] = print


class Launcher(ABC):
    net: BoardNet | None = None  # how the host reaches the board's network, if it has one
    can: SlcanLink | None = None  # the board's CAN link, if it has one
    restored: bool = False  # started from a snapshot rather than booted
    boot_note: str = ""  # why the last start went as it did (a snapshot that would not restore, ...)
    snapshot_fallback: bool = False  # the last start meant to restore a snapshot and booted cold instead
    # optional abilities: launchers that have one say so (and override the method below)
    can_hard_reset: ClassVar[bool] = False  # stop + start gives a fresh board (not a bench device)
    can_wait_exit: ClassVar[bool] = False  # the machine can end itself with a status (semihosting)

    @abstractmethod
    def start(self) -> Transport: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    def death(self) -> str:
        """Why the board is gone, for error messages."""
        return "the board is gone"

    @property
    def exit_status(self) -> int | None:
        return None

    @property
    def ok_exit_codes(self) -> list[int]:
        """Exit statuses of wait_exit() that are a pass (QEMU: [launch] ok_exit_codes)."""
        return [0]

    def at_prompt(self) -> None:  # noqa: B027 - an optional hook: most launchers do nothing
        """Called once the freshly started firmware first answers at its prompt (QEMU saves its
        snapshot here, so restores land at the prompt)."""

    def wait_exit(self, timeout: float) -> int:
        """Wait for the machine to end itself; its exit status. TimeoutError after ``timeout``."""
        raise InfrastructureError(f"{type(self).__name__} boards cannot end themselves with a status")

    def start_capture(self, path: Path) -> str | None:
        """Start a packet capture of the board's traffic into ``path``; an id for stop_capture, or
        None when this board has nothing to capture."""
        return None

    def stop_capture(self, ident: str) -> None:  # noqa: B027 - optional, like start_capture
        """Stop a capture start_capture began (a no-op once the board is gone)."""


def _pacing(spec: BoardSpec) -> dict:
    return {"write_chunk": spec.console.write_chunk, "write_gap_ms": spec.console.write_gap_ms}


def _expand(args: list[str], values: dict[str, str], spec: BoardSpec) -> list[str]:
    try:
        return [a.format(**values) for a in args]
    except KeyError as exc:
        raise InfrastructureError(
            f"{spec.path}: placeholder {{{exc.args[0]}}} in launch arguments is unknown "
            f"(known: {', '.join('{' + k + '}' for k in sorted(values))})"
        ) from None


