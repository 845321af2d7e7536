"""Fixtures of the multi-board suite: the echo and CAN-sender modules under test (HIL_MULTI_ECHO and
HIL_MULTI_CAN point them at broken twins, see tests/integration/test_suite_multi.py) and the test
PKI on every board of a pairing (harness/pki.py, delivered over the REPL as the TLS suite does).

Opt-in: a plain run over suites/ skips it (its pairings need tap boards, which the default set
has not: `make multi`); naming suites/multi runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pki import TestPKI
from harness.pytest.selection import named_in_run
from harness.pytest.twins import board_app

HERE = Path(__file__).parent

ECHO_ENV = "HIL_MULTI_ECHO"
CAN_ENV = "HIL_MULTI_CAN"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == HERE and collection_path.name.startswith("test_") and not named_in_run(config, HERE):
        return True
    return None


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
