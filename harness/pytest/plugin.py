"""pytest plugin (entry point ``hil``): boards as fixtures, capability skips, JUnit that tells
infrastructure errors from test failures and carries each test's console log.

    pytest --board mps2_an385 --board native suites/smoke
    pytest -n 2 --board mps2_an385 --board microbit --board native suites/smoke

Tests that use the ``board`` (session-scoped, booted once per board) or ``dut`` (the same board,
soft-reset before each test) fixture run once per selected board.

Parallel runs (pytest-xdist ``-n``): unless ``--dist`` is given, tests are scheduled *by board*
in runs of one board's tests, so a worker boots a board once: a serial device's tests all go to one
worker (and it is locked, harness/lab/pool.py); a QEMU or process board with more than a worker's
share of the tests is split between workers, each starting its own instance (harness/pytest/scheduling.py).

Infrastructure errors (the board died, would not boot, the port vanished) are retried
``--hil-retries`` times on a freshly restarted board; test failures never are. A board with
``--hil-quarantine-after`` infrastructure errors is quarantined: its remaining tests are reported
as errors without booting it again, and the terminal summary lists it."""

from __future__ import annotations

# The plugin's parts, one job each (pytest loads them with this module):
pytest_plugins = [
    "harness.pytest.options",  # command-line options; the board pool and run state at configure
    "harness.pytest.selection",  # which boards; one test per board; capability skips at collection
    "harness.pytest.scheduling",  # xdist: runs of one board's tests (a device's on one worker)
    "harness.pytest.durations",  # each test's and boot's last duration, for the scheduling
    "harness.pytest.fixtures",  # board, dut, per-test console text and packet capture
    "harness.pytest.multi",  # multi-board tests: duts, one board per role, every pairing, one tap segment
    "harness.pytest.retry",  # retries after infrastructure errors, quarantine, one-line harness errors
    "harness.pytest.junit",  # console text into JUnit, the retried/quarantined summary
    "harness.pytest.evidence",  # a failing test's evidence timeline: console, events, packets, CAN frames
    "harness.pytest.history",  # run history: record the run, baseline labels, --fail-on new
]
