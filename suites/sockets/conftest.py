"""Fixtures of the BSD socket suite: ``peer`` (the host side of every two-party test, see
peerlib.py), ``board_app`` (which module plays the board app) and ``errno`` (the board's errno
numbers)."""

from __future__ import annotations

import errno as host_errno
from types import SimpleNamespace

import pytest
from peerlib import Peer, lwip_pool_note

from harness.pytest import twins

APP_ENV = "HIL_SOCK_APP"
DEFAULT_APP = "hil_sock_msg"


@pytest.fixture
def board_app() -> str:
    """The firmware_py module that plays the board app (message server, download server, UDP
    echo). HIL_SOCK_APP names another with the same functions: a broken twin such as
    hil_sock_naive, which tests/integration/test_suite_sockets.py proves the suite catches."""
    return twins.board_app(APP_ENV, DEFAULT_APP)


@pytest.fixture
def peer(dut, board_app) -> Peer:
    p = Peer(dut, board_app)
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A case that fails with ENOMEM names the lwIP pool that ran out (firmware_c/mps2 reports its
    pools), so "out of lwIP buffers" reads as the cause, not as a bare errno."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed or call.excinfo is None:
        return
    if "ENOMEM" not in str(call.excinfo.value):
        return
    dut = item.funcargs.get("dut")
    note = lwip_pool_note(dut) if dut is not None else None
    if note:
        rep.longrepr = f"{rep.longrepr}\n{note}"
