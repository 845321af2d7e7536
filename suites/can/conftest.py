"""CAN suite fixtures: ``can_bus`` (a python-can Bus on the board's CAN link) and ``canpair``
(that bus plus the board, for two-party tests); the helpers live in hilcan_host.py."""

from __future__ import annotations

import os
import random

import can
import pytest
from hilcan_host import ECHO_APP_ENV, SEED_ENV, CanPair, board_open_args, open_host_bus

from harness.board import Board
from harness.pytest.twins import board_app


@pytest.fixture(scope="session")
def _can_buses():
    """One host connection per board link for the whole session. A board whose SLCAN speaker is
    its own firmware (mps2_an385's UART1) only drains its serial port while hil_can runs, so QEMU
    would not notice a closed connection between tests and frames would go to a dead one."""
    buses: dict[str, tuple[object, can.BusABC]] = {}
    yield buses
    for _, bus in buses.values():
        bus.shutdown()


@pytest.fixture
def can_bus(dut: Board, _can_buses):
    """A python-can Bus connected to the board's CAN link (slcan over socket:// for QEMU boards,
    the lab file's interface for benches); opened again when the board was restarted."""
    link = (dut.launcher, dut.launcher.can if dut.launcher else None)
    held = _can_buses.get(dut.name)
    if held is None or held[0] != link:
        if held is not None:
            del _can_buses[dut.name]
            held[1].shutdown()
        _can_buses[dut.name] = (link, open_host_bus(dut))
    return _can_buses[dut.name][1]


@pytest.fixture
def canpair(dut: Board, can_bus: can.BusABC) -> CanPair:
    pair = CanPair(dut, can_bus, board_open_args(dut))
    pair.drain()  # nothing left over from an earlier test reaches this one
    return pair


@pytest.fixture
def echo_app() -> str:
    """The firmware_py module whose echo() runs on the board (HIL_CAN_ECHO; default hil_can)."""
    return board_app(ECHO_APP_ENV, "hil_can")


@pytest.fixture
def can_rng(request) -> random.Random:
    """A random source for mixed frames: seed from HIL_CAN_SEED, else a fresh one, printed (shown
    with a failure) so the run can be replayed."""
    text = os.environ.get(SEED_ENV, "")
    try:
        seed = int(text, 0) if text else random.SystemRandom().getrandbits(32)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV}={text!r}: not an integer seed") from None
    print(f"CAN frames from seed {seed}: replay with {SEED_ENV}={seed}")
    request.node.user_properties.append(("can_seed", seed))
    rng = random.Random(seed)
    rng.seed_value = seed  # for failure messages
    return rng


@pytest.fixture(scope="session")
def _link_fd() -> dict[str, bool]:
    return {}


@pytest.fixture
def link_fd(dut: Board, canpair: CanPair, _link_fd) -> bool:
    """Whether the board's CAN path carries CAN FD (hil_can's bus.fd), asked once per board."""
    if dut.name not in _link_fd:
        code = f"import hil_can\nbus = {canpair.opener()}\nprint(bus.fd)\nbus.close()\n"
        _link_fd[dut.name] = dut.exec(code).strip() == "True"
    return _link_fd[dut.name]
