"""The plugin's command-line options, and the per-run objects made from them at configure time."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

from harness.config.boards import BoardSpec
from harness.config.labs import lab_boards
from harness.errors import ConfigError
from harness.lab.pool import BoardPool
from harness.pytest.state import POOL, STATE, RunState


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop boards")
    group.addoption("--board", action="append", default=[], help="board to run on (repeatable), or tag:TAG for any "
                    "free board with that tag; default: $HIL_BOARDS or every target with default = true")
    group.addoption("--targets", default=None, help="directory of target files (default: ./targets)")
    group.addoption("--hil-logs", default="hil-out/logs", help="where console logs go (default: hil-out/logs)")
    group.addoption("--hil-retries", type=int, default=1, metavar="N",
                    help="retry a test N times on a fresh board after an infrastructure error (default 1)")
    group.addoption("--hil-quarantine-after", type=int, default=3, metavar="N",
                    help="stop using a board after N infrastructure errors in the run (default 3; 0: never)")
    group.addoption("--hil-lock-timeout", type=float, default=float(os.environ.get("HIL_LOCK_TIMEOUT", 30)),
                    metavar="S", help="wait up to S seconds for a serial device another process holds "
                    "(default $HIL_LOCK_TIMEOUT or 30)")
    group.addoption("--hil-lab", action="append", default=[], metavar="FILE",
                    help="a lab file whose devices --board NAME (or tag:TAG) may select (repeatable)")
    group.addoption("--hil-port", action="append", default=[], metavar="NAME=PORT",
                    help="the port of --hil-lab device NAME, already resolved (a tty, rfc2217:// or labgrid URL); "
                    "default: the lab file's port, or the USB device its match finds (repeatable)")


def _terminal_log(config: pytest.Config):
    """Messages the user must see while a test runs (waiting for a busy device): past capture."""

    def log(message: str) -> None:
        capman = config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            sys.stderr.write(f"hil: {message}\n")
            sys.stderr.flush()

    return log


def lab_devices(config: pytest.Config) -> dict[str, BoardSpec]:
    """The boards of --hil-lab's devices, on --hil-port's ports (harness/config/labs.py lab_boards)."""
    ports = {}
    for item in config.getoption("hil_port"):
        name, sep, port = item.partition("=")
        if not sep or not name or not port:
            raise pytest.UsageError(f"--hil-port {item}: write NAME=PORT (a device of a --hil-lab file)")
        ports[name] = port
    if ports and not config.getoption("hil_lab"):
        raise pytest.UsageError("--hil-port names a device of a lab file: add --hil-lab FILE")
    if not config.getoption("hil_lab"):
        return {}
    try:
        return lab_boards([Path(p) for p in config.getoption("hil_lab")], ports)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*caps): needs board capabilities (net, tls, can, fs, ...)")
    config.addinivalue_line("markers", "boards(*names): run only on these boards")
    if config.getoption("targets"):
        os.environ["HIL_TARGETS"] = str(Path(config.getoption("targets")).resolve())
    if config.getoption("hil_retries") < 0 or config.getoption("hil_quarantine_after") < 0:
        raise pytest.UsageError("--hil-retries and --hil-quarantine-after must be >= 0")
    log_dir = Path(config.getoption("hil_logs"))
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:  # each xdist worker boots its own boards: its own console logs
        log_dir = log_dir / worker
    timeout = config.getoption("hil_lock_timeout")
    config.stash[POOL] = BoardPool(log_dir, lock_timeout=timeout, log=_terminal_log(config), boards=lab_devices(config))
    config.stash[STATE] = RunState()
