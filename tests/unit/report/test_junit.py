"""Reading runs back: `hil report` (board x suite matrix, HTML) and `hil report merge` (JUnit files
of separate CI jobs, one per board), on JUnit written by real runs on real boards."""

from __future__ import annotations

import pytest

from harness.report.junit import read_cases, suite_of, tally_by_board


@pytest.mark.parametrize(
    ("classname", "suite"),
    [
        ("suites.smoke.test_smoke", "smoke"),
        ("suites.net.sockets.test_tcp", "net"),
        ("suites.smoke.test_smoke.TestGroup", "smoke"),
        ("tests.test_plugin", "test_plugin"),
        ("test_suite", "test_suite"),
        ("suites.test_top", "test_top"),
    ],
)
def test_suite_is_the_directory_under_suites_or_the_module(classname, suite):
    assert suite_of(classname) == suite


def test_expected_failures_are_their_own_outcome(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="s">'
        '<testcase classname="suites.tls.test_a" name="test_alpn[native]">'
        '<properties><property name="board" value="native"/></properties>'
        '<skipped type="pytest.xfail" message="native: no ALPN"/></testcase>'
        '<testcase classname="suites.tls.test_a" name="test_can[native]">'
        '<properties><property name="board" value="native"/></properties>'
        '<skipped type="pytest.skip" message="lacks capability: can"/></testcase>'
        "</testsuite></testsuites>"
    )
    outcomes = {c.name: c.outcome for c in read_cases(xml)}
    assert outcomes == {"test_alpn[native]": "xfailed", "test_can[native]": "skipped"}
    tally = tally_by_board(xml)["native"]
    assert (tally.xfailed, tally.skipped, tally.verdict) == (1, 1, "SKIP")


