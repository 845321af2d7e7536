"""A QEMU board playing a real device on a serial port, for the lab tooling without hardware."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError


# --- a QEMU board as an attached device ---------------------------------------------------------------
class EmulatedDevice:
    """A QEMU board playing a device on a serial port (its /dev/pts/N), for the lab tooling without
    hardware: the harness boots it, then lets go of the port so a lab entry can open it like
    /dev/ttyACM0. ``unplug()`` kills QEMU, which closes the pty as a pulled cable would."""

    def __init__(self, board: str = "microbit", log_dir: Path | None = None, log=lambda m: None) -> None:
        self.board_name = board
        self.log_dir, self.log = log_dir, log
        self.board = None
        self.port = ""

    def start(self) -> EmulatedDevice:
        from harness.board import Board
        from harness.config.boards import find_board

        spec = find_board(self.board_name)
        if spec.launch.kind != "qemu":
            raise ConfigError(f"{spec.path}: an emulated device must be a QEMU board, not {spec.launch.kind}")
        self.board = Board(spec, log_dir=self.log_dir, log=self.log)
        self.board.start()
        self.port = self.board.launcher.ptys["serial0"]
        self.board.repl.exit_raw()  # leave it at the friendly prompt, as a freshly plugged board
        self.board.console.flush_input()
        self.board.console.transport.close()  # free the port (it is opened exclusively)
        return self

    def alive(self) -> bool:
        return self.board is not None and self.board.alive()

    def unplug(self) -> None:
        from harness import procs

        if self.board is not None and self.board.launcher is not None:
            procs.kill(self.board.launcher.proc)

    def stop(self) -> None:
        if self.board is not None:
            self.board.stop()
            self.board = None

    def __enter__(self) -> EmulatedDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
