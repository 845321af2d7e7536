"""Fixtures of the BSD socket suite: ``peer`` (the host side of every two-party test, see
peerlib.py), ``parser_module`` (which message-parser app the board runs) and ``errno`` (the
board's errno numbers)."""

from __future__ import annotations

import errno as host_errno
import os
from types import SimpleNamespace

import pytest
from peerlib import Peer


@pytest.fixture
def parser_module() -> str:
    """The board's message-parser module. HIL_SOCK_PARSER=hil_sock_naive points the suite at the
    deliberately broken variant (tests/integration/test_suite_sockets.py proves the suite catches it)."""
    return os.environ.get("HIL_SOCK_PARSER", "hil_sock_msg")


@pytest.fixture
def peer(dut, parser_module) -> Peer:
    p = Peer(dut, parser_module)
    yield p
    p.close()


@pytest.fixture
def errno(dut) -> SimpleNamespace:
    """The board's errno numbers by name. They are the C library's: Linux numbering on the unix
    port, newlib's on bare-metal ports (ETIMEDOUT is 110 on one, 116 on the other), so a test
    compares names, as firmware does with ``errno.ETIMEDOUT``. Names the board's errno module does
    not export (EPIPE, EMFILE: numbered alike everywhere) come from the host."""
    board = getattr(dut, "_errno_by_name", None)  # asked once per booted board
    if board is None:
        board = dut.eval("{n: v for v, n in __import__('errno').errorcode.items()}")
        dut._errno_by_name = board
    names = {n: getattr(host_errno, n) for n in dir(host_errno) if n.isupper()}
    return SimpleNamespace(**(names | board))
