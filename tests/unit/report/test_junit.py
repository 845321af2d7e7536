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
    tally = tally_by_board(read_cases(xml))["native"]
    assert (tally.xfailed, tally.skipped, tally.verdict) == (1, 1, "SKIP")




def _two_passed_one_failed(tmp_path):
    xml = tmp_path / "j.xml"
    case = ('<testcase classname="suites.smoke.test_s" name="{n}[{b}]">'
            '<properties><property name="board" value="{b}"/></properties>{r}</testcase>')
    xml.write_text(
        '<testsuites><testsuite name="s">'
        + case.format(n="test_a", b="native", r="") + case.format(n="test_b", b="native", r="")
        + case.format(n="test_a", b="mps2", r='<failure message="boom"/>')
        + "</testsuite></testsuites>"
    )  # fmt: skip
    return xml


def test_an_interrupted_run_is_never_a_pass(tmp_path):
    xml = _two_passed_one_failed(tmp_path)
    whole = tally_by_board(read_cases(xml))
    assert (whole["native"].verdict, whole["mps2"].verdict) == ("PASS", "FAIL")
    cut = tally_by_board(read_cases(xml), interrupted=True)
    assert {name: t.verdict for name, t in cut.items()} == {"native": "INTERRUPTED", "mps2": "INTERRUPTED"}
    assert (cut["native"].passed, cut["native"].failed, cut["mps2"].failed) == (2, 0, 1)  # the counts stay
    assert cut["mps2"].reasons == ["test_a[mps2]: boom"]


def test_pairings_that_ran_nothing_are_named_once_with_their_reason():
    from harness.report.junit import CaseResult, idle_pairings

    def case(board: str, outcome: str, message: str = "", pair: bool = True) -> CaseResult:
        props = {"board": board} | ({"boards": "server=a,client=b"} if pair else {})
        return CaseResult(board, "multi", "suites.multi.test_multi_tcp", "t", outcome, message, "", 0.0, "", props)

    cases = [case("a-b", "passed"), case("a-b", "skipped", "lacks tls"),  # ran something: a row
             case("n-b", "skipped", "native cannot join"), case("n-b", "skipped", "other"),  # ran nothing
             case("microbit", "skipped", "lacks net", pair=False)]  # a board, not a pairing: stays a row  # fmt: skip
    assert idle_pairings(cases) == {"n-b": "native cannot join"}
