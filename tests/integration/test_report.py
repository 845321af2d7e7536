"""Reading runs back: `hil report` (board x suite matrix, HTML) and `hil report merge` (JUnit files
of separate CI jobs, one per board), on JUnit written by real runs on real boards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped

from harness.report.junit import matrix, read_cases
from tests.conftest import REPO, write_target

HIL = str(Path(sys.executable).parent / "hil")

SUITE = """
import pytest

def test_ok(dut):
    assert dut.exec("print('ok')") == "ok\\n"

def test_wrong(dut):
    assert dut.eval("1 + 1") == 3

@pytest.mark.requires("can")
def test_needs_can(dut):
    pass
"""


def run_suite(workdir: Path, boards: list[str], junit: Path, extra_targets: dict[str, str] | None = None) -> int:
    """A real child pytest run of SUITE (suites/demo/test_demo.py) on ``boards``: returns its status."""
    targets = workdir / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    for name in ("native", "microbit", "mps2_an385"):
        shutil.copy(REPO / "targets" / f"{name}.toml", targets)
    for name, body in (extra_targets or {}).items():
        write_target(targets, name, body)
    suite = workdir / "suites" / "demo"
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "test_demo.py").write_text(SUITE)
    args = [sys.executable, "-m", "pytest", "suites/demo", f"--targets={targets}", f"--junitxml={junit}",
            f"--hil-logs={workdir / 'logs'}", "-p", "no:cacheprovider", f"--rootdir={workdir}", "-q",
            *(f"--board={b}" for b in boards)]  # fmt: skip
    return subprocess.run(args, cwd=workdir, capture_output=True, timeout=300, start_new_session=True).returncode


DEAD = '[launch]\nkind = "qemu"\nmachine = "mps2-an385"\nargs = ["-kernel", "/nonexistent/k.elf"]\n'


@pytest.fixture(scope="module")
def job_reports(tmp_path_factory):
    """Two CI-style jobs: one board each (native; microbit), plus a board that never boots."""
    root = tmp_path_factory.mktemp("jobs")
    a, b = root / "native.xml", root / "microbit.xml"
    assert run_suite(root / "a", ["native", "dead"], a, {"dead": DEAD}) == pytest.ExitCode.TESTS_FAILED
    assert run_suite(root / "b", ["microbit"], b) == pytest.ExitCode.TESTS_FAILED
    return a, b


def _keys(path: Path) -> list[tuple[str, str]]:
    keys = []
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            props = {p.name: p.value for p in case.child(Properties)}
            keys.append((case.name, props["board"]))
    return keys


def test_merge_keeps_every_case_once_with_its_board(job_reports, tmp_path):
    a, b = job_reports
    merged = tmp_path / "merged.xml"
    # b given twice (a CI job re-run): its cases still appear once
    out = subprocess.run([HIL, "report", "merge", str(merged), str(a), str(b), str(b)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    keys = _keys(merged)
    assert len(keys) == len(set(keys)) == len(_keys(a)) + len(_keys(b)) == 9
    assert {board for _, board in keys} == {"native", "microbit", "dead"}
    assert all(name.endswith(f"[{board}]") for name, board in keys)
    xml = JUnitXml.fromfile(str(merged))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"hil native", "hil microbit", "hil dead"}
    assert (suites["hil microbit"].tests, suites["hil microbit"].failures, suites["hil microbit"].skipped) == (3, 1, 1)
    assert (suites["hil dead"].errors, suites["hil dead"].skipped) == (2, 1)  # it has no CAN: skipped, no boot
    assert xml.tests == 9
    cases = {(c.name, c.board): c for c in read_cases(merged)}
    ok = cases[("test_ok[microbit]", "microbit")]
    assert ok.outcome == "passed" and "ok" in ok.system_out  # the console log survives the merge
    assert ok.props["micropython_version"] == "1.9.2" and ok.props["image_digest"]
    assert "merged 3 files" in out.stdout and "9 test cases" in out.stdout


def test_merge_mistakes_are_one_line(job_reports, tmp_path):
    a, _ = job_reports
    missing = tmp_path / "nope.xml"
    out = subprocess.run([HIL, "report", "merge", str(tmp_path / "m.xml"), str(a), str(missing)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"hil: error: {missing}: no such JUnit file; run `hil run` first or give the right path"
    )
    junk = tmp_path / "junk.xml"
    junk.write_text("not xml")
    out = subprocess.run([HIL, "report", str(junk)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith(f"hil: error: {junk}: not a JUnit XML file")
    assert len(out.stderr.strip().splitlines()) == 1


def test_report_prints_board_by_suite_matrix(job_reports, tmp_path):
    a, b = job_reports
    merged = tmp_path / "merged.xml"
    subprocess.run([HIL, "report", "merge", str(merged), str(a), str(b)], check=True, capture_output=True, timeout=60)
    html = tmp_path / "out" / "report.html"
    out = subprocess.run([HIL, "report", str(merged), "--html", str(html)], capture_output=True, text=True,
                         timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") >= 3}
    assert "demo" in out.stdout.splitlines()[2]  # the suite is the column
    assert "FAILED" in rows["microbit"] and "1 pass" in rows["microbit"] and "1 skip" in rows["microbit"]
    assert "ERROR" in rows["dead"] and "2 error" in rows["dead"]
    assert html.exists() and "<table id=\"matrix\"" in html.read_text()
    grid = matrix(read_cases(merged))
    assert grid["native"]["demo"] == {"passed": 1, "failed": 1, "error": 0, "xfailed": 0, "skipped": 1}


def test_junit_kinds_from_a_real_run(job_reports):
    a, _ = job_reports
    cases = {c.name: c for c in read_cases(a)}
    assert cases["test_wrong[native]"].outcome == "failed"
    assert cases["test_needs_can[native]"].outcome == "skipped"
    assert cases["test_ok[dead]"].outcome == "error" and "BootError" in cases["test_ok[dead]"].message
    raw = {c.name: c for s in JUnitXml.fromfile(str(a)) for c in s}
    assert isinstance(raw["test_wrong[native]"].result[0], Failure)
    assert isinstance(raw["test_ok[dead]"].result[0], Error)
    assert isinstance(raw["test_needs_can[native]"].result[0], Skipped)




