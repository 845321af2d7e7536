"""CAN suite fixtures: ``can_bus`` (a python-can Bus on the board's CAN link) and ``canpair``
(that bus plus the board, for two-party tests); the helpers live in hilcan_host.py."""

from __future__ import annotations

import os

import can
import pytest
from hilcan_host import ECHO_DROP_ENV, CanPair, board_open_args, open_host_bus

from harness.board import Board


@pytest.fixture
def can_bus(dut: Board):
    """A python-can Bus connected to the board's CAN link (slcan over socket:// for QEMU boards,
    the lab file's interface for benches)."""
    bus = open_host_bus(dut)
    try:
        yield bus
    finally:
        bus.shutdown()


@pytest.fixture
def canpair(dut: Board, can_bus: can.BusABC) -> CanPair:
    pair = CanPair(dut, can_bus, board_open_args(dut))
    pair.drain()  # nothing left over from an earlier test reaches this one
    return pair


@pytest.fixture
def echo_drop_every() -> int:
    return int(os.environ.get(ECHO_DROP_ENV, "0") or 0)
