"""The trend numbers read from a real SQLite history (harness/history/trends.py) and their charts
and strips in the HTML report (harness/report/trends.py, html.py)."""

from __future__ import annotations

import json
import re

from harness.history.recorder import record_run
from harness.history.records import BoardInfo, RunInfo, TestResult
from harness.history.trends import trend_data
from harness.report.html import render, write_html
from harness.report.junit import CaseResult
from harness.report.trends import TRENDS_FILE, charts_html, load_trends

COIN = "suites/smoke/test_smoke.py::test_coin[native]"
OK = "suites/smoke/test_smoke.py::test_ok[native]"


def _runs(store) -> list[int]:
    ids = []
    for i, coin in enumerate(["failed", "passed", "failed"]):
        results = [TestResult(COIN, "native", coin, 0.5, code_hash="c", image_digest="d"),
                   TestResult(OK, "native", "passed", 1.0, code_hash="c", image_digest="d")]  # fmt: skip
        board = [BoardInfo("native", "d", "1.24", "MicroPython", 0.1 * (i + 1))]
        ids.append(record_run(store, RunInfo(started=float(i), label="main"), board, results))
    return ids


def test_trend_numbers_of_the_newest_runs(store):
    ids = _runs(store)
    data = trend_data(store, ids[1])  # as run 2 saw it: runs 1 and 2 only
    assert [r["id"] for r in data["runs"]] == ids[:2]
    data = trend_data(store, ids[2], limit=20)
    first, _, third = data["runs"]
    assert (first["passed"], first["failed"], first["flaky"]) == (1, 0, 1)  # the coin's failures count as flaky
    assert (third["passed"], third["flaky"]) == (1, 1)
    assert data["boot"] == {"native": [[ids[0], 0.1], [ids[1], 0.2], [ids[2], 0.30000000000000004]]}
    assert data["suites"] == {"smoke": [[i, 1.5] for i in ids]}
    assert data["strips"][COIN] == [[ids[0], "failed"], [ids[1], "passed"], [ids[2], "failed"]]
    json.dumps(data)  # written as JSON beside the JUnit file


def test_charts_are_inline_svg_without_script(store):
    ids = _runs(store)
    html = charts_html(trend_data(store, ids[2]))
    assert html.count("<svg") == 3 and "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    for title in ("outcomes per run (last 3)", "boot time per board", "suite durations"):
        assert title in html


def _case(name, outcome, props=None) -> CaseResult:
    return CaseResult("native", "smoke", "suites.smoke.test_smoke", name, outcome, "", "", 0.1, "", props or {})


def test_report_shows_labels_strips_and_the_trends_section(store, tmp_path):
    ids = _runs(store)
    data = trend_data(store, ids[2])
    data["strips"] = {"suites.smoke.test_smoke::test_coin[native]": data["strips"][COIN]}
    cases = [_case("test_coin[native]", "failed", {"hil_baseline": "FLAKY"}), _case("test_ok[native]", "passed")]
    html = render(cases, trends=data)
    assert '<section id="trends">' in html and '<span class="label FLAKY"' in html and "1 FLAKY" in html
    coin = html[html.index("<code>test_coin[native]</code>") :]
    assert re.findall(r'class="s-(\w+)"', coin[: coin.index("</summary>")]) == ["failed", "passed", "failed"]
    plain = render(cases)
    assert 'id="trends"' not in plain and 'class="strip"' not in plain
    # write_html picks the numbers up from beside the JUnit file; a broken file means no charts
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite name="s"><testcase classname="a" name="t"/></testsuite></testsuites>')
    (tmp_path / TRENDS_FILE).write_text(json.dumps(data))
    assert 'id="trends"' in write_html(junit, tmp_path / "r.html").read_text()
    (tmp_path / TRENDS_FILE).write_text("{not json")
    assert load_trends(junit) is None
    assert 'id="trends"' not in write_html(junit, tmp_path / "r.html").read_text()


def test_labels_become_junit_properties(tmp_path):
    from harness.report.junit import finalize_junit, read_cases

    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite name="s"><testcase classname="m" name="t1"><failure message="x"/>'
                     '</testcase><testcase classname="m" name="t2"><properties><property name="board" '
                     'value="native"/></properties></testcase></testsuite></testsuites>')  # fmt: skip
    finalize_junit(junit, {}, {("m", "t1"): {"hil_baseline": "NEW"}, ("m", "t2"): {"hil_baseline": "FIXED"}})
    cases = {c.name: c for c in read_cases(junit)}
    assert cases["t1"].props == {"hil_baseline": "NEW"} and cases["t1"].outcome == "failed"
    assert cases["t2"].props == {"board": "native", "hil_baseline": "FIXED"}
    assert junit.read_text().index("<properties>") < junit.read_text().index("<failure")  # properties first
