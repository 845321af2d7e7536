"""Parallel runs over real boards (pytest-xdist, child pytest): scheduling by board, retries of
infrastructure errors on a fresh board, quarantine of a board that keeps failing."""

from __future__ import annotations


def test_scheduler_finds_the_board_in_test_ids():
    from harness.pytest.scheduling import board_of_nodeid

    names = ["native", "esp32", "esp32-bench-1"]
    assert board_of_nodeid("s/test_a.py::test_x[native]", names) == "native"
    assert board_of_nodeid("s/test_a.py::T::test_x[3-esp32-bench-1]", names) == "esp32-bench-1"
    assert board_of_nodeid("s/test_a.py::test_x[esp32-7]", names) == "esp32"
    assert board_of_nodeid("s/test_a.py::test_x", names) is None
    assert board_of_nodeid("s/test_a.py::test_x[other]", names) is None


