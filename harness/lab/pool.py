"""Leasing boards: which board a test gets, and who may use a device.

- QEMU and process boards are cheap copies: every pytest process (each xdist worker) starts its
  own, booted once and kept for that board's tests.
- Serial boards are one physical device shared by every worker, process and user on the host.
  Exclusivity is an OS-level lock per device: ``fcntl.flock`` on a lock file under
  ``$HIL_LOCK_DIR`` (default ``/tmp/hil-locks``), which the kernel releases when its holder dies,
  even by ``kill -9``; the port itself is then opened exclusively (pyserial ``exclusive=True``).
  The lock file says who holds it (pid, host, command, since when), so a busy device is reported
  by name instead of a bare "resource busy".
- Every command that opens a device takes its lock, not only pytest runs: ``hil flash`` and ``hil
  smoke`` hold it for the whole flash, banner check and suite. The suite's child pytest does not
  lock again (it would wait for its own parent): the parent hands it the locked file descriptor
  (``pass_fds`` + ``$HIL_LOCK_FDS``, see ``handover``) and the child adopts it. The
  device is never unlocked in between, and the lock outlives neither of them.

A lease asks for a board by name (``mps2_an385``) or by tag (``tag:esp32``: any board whose name,
arch, launch kind, capabilities or ``[board] tags`` include it; the first free one wins). Besides
the target files, a pool may know extra boards by name: lab devices (pytest ``--hil-lab``, see
harness/config/labs.py lab_boards)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import socket
import sys
import termios
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import serial

from harness.board import Board
from harness.config.boards import BoardSpec, check_installed, find_board, load_all
from harness.config.ports import parse_port
from harness.errors import BootError, ConfigError, HarnessError, InfrastructureError
from harness.io.usb import resolve_lab_port

DEFAULT_LOCK_DIR = "/tmp/hil-locks"
TAG_PREFIX = "tag:"
INHERITED_ENV = "HIL_LOCK_FDS"  # lock file descriptors a parent (hil smoke) handed its child pytest


class DeviceBusy(InfrastructureError):
    """Another process holds the device's lock and did not let go in time."""


def lock_dir() -> Path:
    return Path(os.environ.get("HIL_LOCK_DIR") or DEFAULT_LOCK_DIR)


def _lock_name(port: str) -> str:
    """One lock file per device, however its port is written (see lock_port)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", lock_port(port)).strip("_") + ".lock"


@dataclass
class Holder:
    pid: int = 0
    host: str = ""
    command: str = ""
    board: str = ""
    since: float = 0.0
    purpose: str = ""  # what the holder does with it, e.g. "hil smoke" (else its command line says)

    def describe(self) -> str:
        if not self.pid:
            return "another process (it has not said who it is yet)"
        when = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "?"
        command = self.purpose or self.command
        command = command if len(command) <= 80 else command[:77] + "..."
        return f"pid {self.pid} ({command} on host {self.host}) since {when}"


class DeviceLock:
    """An exclusive, crash-safe claim on one device (see the module docstring).

    The lock file is never deleted (deleting a flock'ed file lets two processes lock two different
    inodes of one name); its content is one JSON line naming the holder, blanked on release."""

    def __init__(self, port: str, board: str, directory: Path | None = None, purpose: str = "") -> None:
        self.port, self.board, self.purpose = port, board, purpose
        self.directory = directory or lock_dir()
        self.path = self.directory / _lock_name(port)
        self.fd = -1
        self.inherited = False  # adopted from the parent process: its holder record stays

    def _open(self) -> int:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.directory == Path(DEFAULT_LOCK_DIR):
                os.chmod(self.directory, 0o1777)  # shared by every user of the bench, like /tmp
        except PermissionError:
            pass
        except OSError as exc:
            raise InfrastructureError(
                f"cannot create lock directory {self.directory}: {exc}; set HIL_LOCK_DIR to a writable directory"
            ) from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise InfrastructureError(
                f"cannot open lock file {self.path}: {exc}; set HIL_LOCK_DIR to a writable directory"
            ) from None
        try:
            os.fchmod(fd, 0o666)
        except OSError:
            pass
        return fd

    def try_acquire(self) -> bool:
        if self.fd >= 0:
            return True
        fd = self._inherited_fd()
        if fd >= 0:
            self.fd, self.inherited = fd, True
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        me = {
            "pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(_command_line()),
            "board": self.board, "port": self.port, "since": time.time(), "purpose": self.purpose,
        }  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self.fd = fd
        return True

    def _inherited_fd(self) -> int:
        """A descriptor of this very lock file (same inode) that the parent handed us, locked by it:
        flock on the same open file description succeeds (it is ours too). Anything else in
        $HIL_LOCK_FDS (a number reused for another file, a closed one) is ignored."""
        try:
            ours = os.stat(self.path)
        except OSError:
            return -1
        for item in os.environ.get(INHERITED_ENV, "").split(","):
            if not item.strip().isdigit():
                continue
            fd = int(item)
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (ours.st_dev, ours.st_ino):
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # closed, not ours after all, or locked by another open file
                continue
            return fd
        return -1

    def holder(self) -> Holder:
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        known = Holder.__dataclass_fields__
        return Holder(**{k: v for k, v in data.items() if k in known})

    def busy_message(self) -> str:
        return f"device {self.port} (board {self.board}) is held by {self.holder().describe()}"

    def acquire(self, timeout: float, log: Callable[[str], None] = lambda m: None, poll: float = 0.1,
                option: str = "--hil-lock-timeout") -> None:  # fmt: skip
        """Wait up to ``timeout`` seconds for the device; DeviceBusy names the holder if it stays busy
        (and ``option``, the command's way to wait longer)."""
        if self.try_acquire():
            return
        log(f"{self.busy_message()}; waiting up to {timeout:g} s")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            if self.try_acquire():
                log(f"device {self.port} (board {self.board}) is ours now")
                return
        raise DeviceBusy(
            f"{self.busy_message()}; gave up after {timeout:g} s: stop that process, or wait longer with "
            f"{option} (or $HIL_LOCK_TIMEOUT)"
        )

    def release(self) -> None:
        if self.fd < 0:
            return
        if self.inherited:  # the parent's lock: it still holds it and releases it; keep the descriptor
            self.fd, self.inherited = -1, False  # open so a later lease here adopts it again
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = -1

    @property
    def held(self) -> bool:
        return self.fd >= 0


def handover(locks: list[DeviceLock]) -> tuple[dict[str, str], tuple[int, ...]]:
    """Environment and ``pass_fds`` for a child that must use the devices these held locks guard
    (hil smoke's suite pytest). Passing the locked descriptor is what keeps the device locked
    throughout: releasing it for the child to take again would let a third process in between,
    and a child told "your parent holds it" would run unlocked once the parent is gone."""
    fds = tuple(lock.fd for lock in locks if lock.held)
    return {INHERITED_ENV: ",".join(map(str, fds))}, fds


def _command_line() -> list[str]:
    try:
        return Path("/proc/self/cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return sys.argv


def lock_port(port: str) -> str:
    """The name of a device's lock: one per device, however its port is written, so that a pytest
    run through a target and `hil smoke` on the lab device take one lock. A ``lab:NAME`` is the
    device it resolves to; /dev/serial/by-id/... is the /dev/ttyACM0 it points to; a labgrid place is
    ``labgrid://COORDINATOR/PLACE`` (labgrid lets one user on one host use a place twice, so its
    own reservation does not keep two of our runs apart)."""
    ref = parse_port(port)
    if ref.scheme == "lab":
        try:
            return lock_port(resolve_lab_port(ref).text)
        except (HarnessError, ValueError):  # not attached, ambiguous: opening it says so, with the fix
            return port
    if ref.scheme == "labgrid":
        return ref.with_coordinator(None).text
    return os.path.realpath(port) if ref.scheme == "device" else port


@contextlib.contextmanager
def _boot_errors(name: str):
    """An OS-level failure while a board boots (its pty vanished mid-write, ...) is the board not
    booting: an infrastructure error (retried, counted for quarantine), not a harness traceback."""
    try:
        yield
    except (OSError, termios.error, serial.SerialException) as exc:
        raise BootError(f"{name}: board did not boot: {type(exc).__name__}: {exc}") from None


def board_tags(spec: BoardSpec) -> set[str]:
    tags = {spec.name, spec.launch.kind, *spec.capabilities.listed(), *spec.tags}
    if spec.arch:
        tags.add(spec.arch)
    return tags


def candidates(selector: str, directory: Path | None = None, extra: Mapping[str, BoardSpec] | None = None,
               ) -> list[BoardSpec]:  # fmt: skip
    """The boards a selector may lease: one by name, or every board carrying ``tag:X``'s tag.
    ``extra``: boards besides the target files (lab devices), by name; they win a name clash."""
    extra = extra or {}
    if not selector.startswith(TAG_PREFIX):
        return [extra[selector]] if selector in extra else [find_board(selector, directory)]
    tag = selector[len(TAG_PREFIX) :]
    boards = load_all(directory) | dict(extra)
    specs = [s for s in boards.values() if tag in board_tags(s)]
    if not specs:
        raise ConfigError(
            f"--board {selector}: no target file has tag {tag!r}{', nor a lab device' if extra else ''} (tags are "
            f"a board's name, arch, "
            f"launch kind, capabilities and tags); check the spelling or add it to a target's [board] tags "
            f"or a lab device's tags"
        )
    return specs


def _journal(board: Board, text: str) -> None:
    """A lease event onto the board's evidence timeline (a stand-in board in a unit test may have none)."""
    journal = getattr(board, "journal", None)
    if journal is not None:
        journal.event(text)


class BoardPool:
    """Boards leased by this process, by selector. Serial boards are locked while leased.

    Errors a retry cannot fix (a bad target file, a device another process keeps) are remembered
    and re-raised for the selector's later tests without waiting again; a board that failed to
    boot may be booted again (the plugin decides how often: retries and quarantine)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        lock_timeout: float = 30.0,
        lock_directory: Path | None = None,
        log: Callable[[str], None] = lambda m: None,
        board_factory: Callable[..., Board] = Board,
        boards: Mapping[str, BoardSpec] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.lock_timeout = lock_timeout
        self.lock_directory = lock_directory
        self.log = log
        self.board_factory = board_factory
        self.extra: dict[str, BoardSpec] = dict(boards or {})  # lab devices, by name (see candidates)
        self.boards: dict[str, Board] = {}
        self.locks: dict[str, DeviceLock] = {}
        self.failures: dict[str, HarnessError] = {}
        self.stale: set[str] = set()

    def get(self, selector: str) -> Board:
        if selector in self.failures:
            raise self.failures[selector]
        if selector not in self.boards:
            try:
                self.boards[selector] = self._lease(selector)
            except (ConfigError, DeviceBusy) as exc:
                self.failures[selector] = exc
                raise
            self.stale.discard(selector)
        return self.boards[selector]

    def _lease(self, selector: str) -> Board:
        specs = self.candidates(selector)
        devices = [s for s in specs if s.launch.physical]
        spec = next((s for s in specs if not s.launch.physical), None)
        lock = None
        if spec is None:
            spec, lock = self._lock_any(devices)
        try:
            check_installed(spec)  # a missing QEMU is a ConfigError: not retried, file and key named
            board = self.board_factory(spec, log_dir=self.log_dir, log=self.log)
            held = f", device {spec.launch.port} locked ({lock.path})" if lock else ""
            _journal(board, f"lease {selector}: board {spec.name}{held}")
            with _boot_errors(spec.name):
                board.start()
        except BaseException:
            if lock:
                lock.release()
            raise
        if lock:
            self.locks[selector] = lock
        return board

    def candidates(self, selector: str) -> list[BoardSpec]:
        """What ``selector`` may lease here: target files plus this pool's extra boards."""
        return candidates(selector, extra=self.extra)

    def _lock_any(self, specs: list[BoardSpec]) -> tuple[BoardSpec, DeviceLock]:
        """The first free device among ``specs``; else wait for any of them up to the lock timeout."""
        locks = [(s, DeviceLock(s.launch.port, s.name, self.lock_directory)) for s in specs]
        for spec, lock in locks:
            if lock.try_acquire():
                return spec, lock
        if len(locks) == 1:
            spec, lock = locks[0]
            lock.acquire(self.lock_timeout, self.log)
            return spec, lock
        self.log("; ".join(lock.busy_message() for _, lock in locks) + f"; waiting up to {self.lock_timeout:g} s")
        deadline = time.monotonic() + self.lock_timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            for spec, lock in locks:
                if lock.try_acquire():
                    return spec, lock
        raise DeviceBusy(
            "every matching device is busy: " + "; ".join(lock.busy_message() for _, lock in locks)
            + f"; gave up after {self.lock_timeout:g} s: stop those processes or raise --hil-lock-timeout"
        )

    def mark_stale(self, selector: str) -> None:
        """The board broke: the next test must get a freshly started one."""
        self.stale.add(selector)

    def ensure_fresh(self, selector: str) -> Board:
        """The leased board, restarted first if it was marked stale or has died since."""
        board = self.get(selector)
        if selector in self.stale or not board.alive():
            self.stale.discard(selector)
            board.console_note(f"hil: restarting {board.name} for a fresh board")
            with _boot_errors(board.name):
                board.restart()  # QEMU/process: a new emulator; serial: reopen the port, wait for the prompt
        return board

    def release(self, selector: str) -> None:
        board = self.boards.pop(selector, None)
        try:
            if board:
                _journal(board, f"release {selector}")
                board.stop()
        finally:
            lock = self.locks.pop(selector, None)
            if lock:
                lock.release()

    def stop_all(self) -> None:
        for selector in list(self.boards):
            self.release(selector)
