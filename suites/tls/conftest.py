"""Fixtures for the TLS suite: one test PKI per run (harness/pki.py), delivered to each board over
the REPL, and the name of the board-side client module under test.

HIL_TLS_CLIENT names the firmware_py module whose client() the board-as-client cases run
(default hil_tls), HIL_TLS_SERVER the one whose server() the hostile-peer and mutual-TLS cases run.
tests/integration/test_suite_tls.py points them at broken twins (hil_tls_noverify, a client with
verification switched off; hil_tls_fragile, _leaky, _shortwrite, _srv_noverify, servers) and checks
that the suite fails them."""

from __future__ import annotations

import time

import pytest
from tls_peers import board_time

from harness.pki import TestPKI
from harness.pytest.twins import board_app

CLIENT_MODULE_ENV = "HIL_TLS_CLIENT"
SERVER_MODULE_ENV = "HIL_TLS_SERVER"
CLOCK_TOLERANCE = 3600.0  # the PKI's bad dates are a day off; a board clock an hour off is broken


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory):
    """Where host peers' PEM files go."""
    return tmp_path_factory.mktemp("tls-pki")


@pytest.fixture
def tls_dut(dut, pki: TestPKI):
    """The board, soft-reset, with this run's PKI in its hil_pki/ directory (written once per
    board boot: a restarted board gets it again)."""
    pki.deliver(dut)
    return dut


@pytest.fixture
def client_module() -> str:
    return board_app(CLIENT_MODULE_ENV, "hil_tls")


@pytest.fixture
def server_module() -> str:
    return board_app(SERVER_MODULE_ENV, "hil_tls")


@pytest.fixture
def real_time_board(tls_dut):
    """For validity-period cases: the board's clock must be the real time, or an expired
    certificate could pass for a fresh one (and a fresh one fail)."""
    skew = board_time(tls_dut) - time.time()
    assert abs(skew) < CLOCK_TOLERANCE, f"board clock is {skew:+.0f} s off the real time"
    return tls_dut
