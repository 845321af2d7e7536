"""Flaky: passed and failed on a board with the same image and test code; flip rate."""

from __future__ import annotations

from harness.history.flaky import flaky_keys, flaky_tests
from harness.history.records import PastResult


def past(run, outcome, nodeid="t::x[native]", board="native", digest="d", code="c") -> PastResult:
    return PastResult(run, 0.0, "main", nodeid, board, outcome, 0.1, False, None, code, digest)


def test_flip_rate_of_an_alternating_and_a_mostly_steady_test():
    results = [past(i, o) for i, o in enumerate(["passed", "failed", "passed", "failed"])]
    results += [past(i, o, nodeid="t::y[native]") for i, o in enumerate(["passed", "passed", "passed", "failed"])]
    first, second = flaky_tests(results)
    assert (first.nodeid, first.flip_rate, first.flips, first.failures, first.runs) == ("t::x[native]", 1.0, 3, 2, 4)
    assert (second.nodeid, round(second.flip_rate, 3), second.last_run) == ("t::y[native]", 0.333, 3)


def test_a_new_image_or_new_test_code_is_a_new_history():
    results = [past(1, "passed", digest="old"), past(2, "failed", digest="new")]
    results += [past(3, "passed", nodeid="t::z[native]", code="v1"),
                past(4, "failed", nodeid="t::z[native]", code="v2")]
    assert flaky_tests(results) == []


def test_errors_and_skips_do_not_make_a_test_flaky_and_boards_are_apart():
    results = [past(1, "passed"), past(2, "error"), past(3, "skipped"), past(4, "xfailed")]
    results += [past(1, "passed", board="microbit"), past(2, "failed", board="mps2")]
    assert flaky_tests(results) == []
    results.append(past(5, "failed"))
    assert list(flaky_keys(results)) == [("t::x[native]", "native")]
