"""Fixtures of the multi-board suite: the echo and CAN-sender modules under test (HIL_MULTI_ECHO and
HIL_MULTI_CAN point them at broken twins, see tests/integration/test_suite_multi.py) and the test
PKI on every board of a pairing (harness/pki.py, delivered over the REPL as the TLS suite does).

Part of a plain run over suites/ (`make run`): the default QEMU boards join the segment as
pairing instances of their own (harness/pytest/multi.py); boards that cannot skip with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pki import TestPKI
from harness.pytest.twins import board_app

HERE = Path(__file__).parent

ECHO_ENV = "HIL_MULTI_ECHO"
CAN_ENV = "HIL_MULTI_CAN"


@pytest.fixture
def echo_module() -> str:
    return board_app(ECHO_ENV, "hil_multi")


@pytest.fixture
def can_module() -> str:
    """The module whose can_send() the sending node runs (HIL_MULTI_CAN: a broken twin)."""
    return board_app(CAN_ENV, "hil_multi")


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture
def tls_duts(duts, pki: TestPKI):
    for board in duts.boards.values():
        pki.deliver(board)
    return duts
