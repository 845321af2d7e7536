"""Every process the harness starts goes through here, so none outlives it.

Each child gets its own process group (so helpers it forks die with it) and PR_SET_PDEATHSIG
(so the kernel kills it even when the harness itself is killed -9). An atexit hook and SIGTERM/
SIGHUP handlers kill whatever is still registered; Ctrl-C unwinds through the normal teardown."""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import InfrastructureError

_live: dict[int, subprocess.Popen] = {}
_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1
# Resolved once in the parent: the child between fork and exec must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _die_with_parent_on_tty() -> None:
    _die_with_parent()
    # stdin is a pty slave: make it our controlling terminal so Ctrl-C on it raises SIGINT,
    # as on a board's UART where Ctrl-C interrupts running code.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn(argv: Sequence[str], controlling_tty: bool = False, **kwargs) -> subprocess.Popen:
    """Popen in a new session and process group that dies with us."""
    setup = _die_with_parent_on_tty if controlling_tty else _die_with_parent
    proc = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=setup, **kwargs)
    with _lock:
        _live[proc.pid] = proc
    return proc


def kill(proc: subprocess.Popen, grace: float = 2.0) -> int | None:
    """Terminate the process group, escalate to SIGKILL after ``grace`` seconds; return the exit status."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # reap stragglers left in the group (e.g. a shell's children)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    with _lock:
        _live.pop(proc.pid, None)
    return proc.poll()


def forget(proc: subprocess.Popen) -> None:
    with _lock:
        _live.pop(proc.pid, None)


def live_pids() -> list[int]:
    with _lock:
        return [pid for pid, p in _live.items() if p.poll() is None]


def kill_all() -> None:
    with _lock:
        procs = list(_live.values())
    for proc in procs:
        kill(proc, grace=0.5)


_signal_cleanups: list[Callable[[], None]] = []


def at_signal(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when SIGTERM/SIGHUP ends the harness (a cancelled CI job), before the
    children are killed: e.g. give back leased lab places. One handler for the whole harness."""
    _signal_cleanups.append(cleanup)


def _on_signal(signum: int, frame) -> None:
    for cleanup in _signal_cleanups:
        try:
            cleanup()
        except Exception:
            pass
    kill_all()
    # Re-raise as the default action so exit status says what killed us.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_handlers() -> None:
    """Kill children on exit and on SIGTERM/SIGHUP. Only the main thread may set handlers."""
    atexit.register(kill_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


install_handlers()


def tool(name: str, package: str) -> str:
    """A console script from this venv (next to sys.executable), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise InfrastructureError(f"{name} not found: install {package} (make setup does)")
    return found
