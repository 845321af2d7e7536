"""pytest plugin (entry point ``hil``): boards as fixtures, capability skips, JUnit that tells
infrastructure errors from test failures and carries each test's console log.

    pytest --board mps2_an385 --board native suites/smoke
    pytest -n 2 --board mps2_an385 --board microbit --board native suites/smoke

Tests that use the ``board`` (session-scoped, booted once per board) or ``dut`` (the same board,
soft-reset before each test) fixture run once per selected board.

Parallel runs (pytest-xdist ``-n``): unless ``--dist`` is given, tests are scheduled *by board*
(every test of a board goes to the worker that has it booted), so each worker boots a board once;
QEMU and process boards are started per worker, serial devices are locked (harness/lab/pool.py).

Infrastructure errors (the board died, would not boot, the port vanished) are retried
``--hil-retries`` times on a freshly restarted board; test failures never are. A board with
``--hil-quarantine-after`` infrastructure errors is quarantined: its remaining tests are reported
as errors without booting it again, and the terminal summary lists it."""

from __future__ import annotations

# The plugin's parts, one job each (pytest loads them with this module):
pytest_plugins = [
    "harness.pytest.options",  # command-line options; the board pool and run state at configure
    "harness.pytest.selection",  # which boards; one test per board; capability skips at collection
    "harness.pytest.scheduling",  # xdist: all of a board's tests on the worker that booted it
    "harness.pytest.fixtures",  # board, dut, per-test console text and packet capture
    "harness.pytest.retry",  # retries after infrastructure errors, quarantine, one-line harness errors
    "harness.pytest.junit",  # console text into JUnit, the retried/quarantined summary
]
