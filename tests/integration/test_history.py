"""Run history end to end (issue 17): three consecutive `hil run`s of a tiny test-only suite on the
native board (the MicroPython unix port), recorded in SQLite and in a real PostgreSQL server.

Run 1 is the first; before run 2 one test is edited to fail (a deterministic regression); a third
test is flaky with a seeded coin (tails in runs 1 and 3, heads in run 2). Then: `--baseline main`
labels the regression NEW in run 2 and KNOWN in run 3, `--fail-on new` makes run 2 red and run 3
green, `hil history flaky` names the coin (and not the regression: its code changed), and the run
facts (git commit and dirty flag, board image and banner, boot time) are in the database."""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml, Properties

from tests.conftest import REPO

HIL = str(Path(sys.executable).parent / "hil")

SUITE = '''
import os
import random


def test_steady(dut):
    assert dut.eval("6 * 7") == 42


def test_regress(dut):
    assert dut.eval("1 + 1") == 2


def test_coin(dut):
    heads = random.Random(int(os.environ["HIL_TEST_COIN_SEED"])).random() < 0.5
    assert dut.eval("1") == (1 if heads else 0)
'''
REGRESSED = SUITE.replace('assert dut.eval("1 + 1") == 2', 'assert dut.eval("1 + 1") == 3')


def _seed(heads: bool, start: int = 0) -> int:
    return next(s for s in range(start, start + 1000) if (random.Random(s).random() < 0.5) == heads)


COIN = [_seed(False), _seed(True), _seed(False, 100)]  # the coin of runs 1, 2, 3: tails, heads, tails


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=hil", "-c", "user.email=hil@localhost", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=30)  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str | None:
    """None: the default history (OUT/history.sqlite); else a real PostgreSQL server's URL."""
    if request.param == "sqlite":
        yield None
        return
    from tests.unit.history.pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def project(tmp_path_factory, backend):
    """A project (a git checkout on branch main) with the suite, and its three runs."""
    root = tmp_path_factory.mktemp("project")
    (root / "targets").mkdir()
    (root / "targets" / "native.toml").write_text((REPO / "targets" / "native.toml").read_text())
    (root / "firmware_py").symlink_to(REPO / "firmware_py")
    (root / "suites" / "hist").mkdir(parents=True)
    test_file = root / "suites" / "hist" / "test_hist.py"
    test_file.write_text(SUITE)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "targets", "suites")
    _git(root, "commit", "-q", "-m", "suite")
    history = [f"--hil-history={backend}"] if backend else []
    runs = []
    for n, seed in enumerate(COIN, start=1):
        if n == 2:
            test_file.write_text(REGRESSED)
        baseline = ["--baseline", "main", "--fail-on", "new"] if n > 1 else []
        env = {**os.environ, "HIL_TEST_COIN_SEED": str(seed), "COLUMNS": "200"}
        env.pop("HIL_HISTORY", None)
        done = subprocess.run(
            [HIL, "run", "--suite", "suites/hist", "--board", "native", "--out", str(root / "out"),
             f"--targets={root / 'targets'}", *history, *baseline, "-p", "no:labgrid"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300, start_new_session=True,
        )  # fmt: skip
        runs.append(done)
        for name in ("junit.xml", "report.html"):  # each run rewrites them
            if (root / "out" / name).exists():
                shutil.copy(root / "out" / name, root / f"run{n}-{name}")
    return root, backend, runs


def _cli(project, *args: str) -> subprocess.CompletedProcess:
    root, backend, _ = project
    where = ["--history", backend] if backend else ["--out", str(root / "out")]
    return subprocess.run([HIL, "history", *args, *where], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})  # fmt: skip


def _labels(junit: Path) -> dict[str, str]:
    labels = {}
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            props = {p.name: p.value for p in case.child(Properties)}
            if "hil_baseline" in props:
                labels[case.name] = props["hil_baseline"]
    return labels


def test_runs_land_with_labels_and_fail_on_new(project):
    root, backend, (run1, run2, run3) = project
    assert (root / "out" / "history.sqlite").exists() == (backend is None)  # the default: beside the reports
    assert run1.returncode == 1, run1.stdout[-3000:] + run1.stderr[-2000:]  # the coin: tails
    assert run2.returncode == 1, run2.stdout[-3000:]  # a NEW failure: red with --fail-on new
    assert run3.returncode == 0, run3.stdout[-3000:]  # only KNOWN and FLAKY: green with --fail-on new
    assert _labels(root / "run2-junit.xml") == {"test_regress[native]": "NEW", "test_coin[native]": "FIXED"}
    assert _labels(root / "run3-junit.xml") == {"test_regress[native]": "KNOWN", "test_coin[native]": "FLAKY"}
    assert "NEW    suites/hist/test_hist.py::test_regress[native]" in run2.stdout
    assert "--fail-on new: 2 known or flaky problem(s), no NEW one: status 0" in run3.stdout
    html = (root / "run3-report.html").read_text()
    assert '<span class="label KNOWN"' in html and '<span class="label FLAKY"' in html
    assert 'id="baseline-labels"' in html


def test_history_flaky_names_the_coin_not_the_regression(project):
    done = _cli(project, "flaky")
    assert done.returncode == 0, done.stderr
    assert "suites/hist/test_hist.py::test_coin[native]" in done.stdout
    assert "test_regress" not in done.stdout  # it failed only with its new code
    assert "test_steady" not in done.stdout
    row = next(line for line in done.stdout.splitlines() if "test_coin" in line)
    assert "1.00" in row and "FPF" in row  # flip rate, outcomes oldest first


def test_history_show_prints_the_last_outcomes_per_board(project):
    done = _cli(project, "show", "test_regress", "-n", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "suites/hist/test_hist.py::test_regress[native] on native: FF" in out  # the last 2 of P F F
    assert "NEW" in out and "KNOWN" in out and "assert 2 == 3" in out
    missing = _cli(project, "show", "test_nothing_like_it")
    assert missing.returncode == 2 and "no recorded result of a test matching 'test_nothing_like_it'" in missing.stderr


def test_run_facts_boards_and_results_are_recorded(project):
    from harness.history.queries import boards_of, results_of, runs_table
    from harness.history.store import open_store, resolve_url

    root, backend, _ = project
    store = open_store(resolve_url(backend or "", root / "out"))
    try:
        runs = list(reversed(runs_table(store, 10)))
        boards = boards_of(store, [r["id"] for r in runs])
        results = results_of(store, [r["id"] for r in runs])
    finally:
        store.close()
    assert [r["exit_status"] for r in runs] == [1, 1, 0]
    assert [r["label"] for r in runs] == ["main"] * 3  # the git branch of the project under test
    assert [r["git_dirty"] for r in runs] == [False, True, True]  # run 2 edited a tracked file
    assert len({r["git_commit"] for r in runs}) == 1 and len(runs[0]["git_commit"]) == 40
    assert [r["baseline"] for r in runs] == [None, "main", "main"]
    assert "--fail-on" in runs[1]["options"] and runs[0]["host"]
    assert [r["counts"] for r in runs] == [{"passed": 2, "failed": 1}, {"passed": 2, "failed": 1},
                                           {"passed": 1, "failed": 2}]  # fmt: skip
    assert len(boards) == 3
    for board in boards:
        assert board["name"] == "native" and board["image_digest"] and "MicroPython" in board["banner"]
        assert board["micropython_version"] and board["boot_seconds"] > 0
    regress = [r for r in results if "test_regress" in r.nodeid]
    assert [r.outcome for r in regress] == ["passed", "failed", "failed"]
    assert regress[0].code_hash != regress[1].code_hash == regress[2].code_hash
    assert [r.baseline_label for r in regress] == [None, "NEW", "KNOWN"]
    assert "assert 2 == 3" in regress[1].first_error
    assert all(r.duration > 0 and r.board == "native" and not r.retried for r in results)


def test_html_report_of_run_3_has_trend_charts_and_strips(project, tmp_path):
    root, backend, _ = project
    html = (root / "run3-report.html").read_text()
    assert "<script" not in html.lower() and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    trends = html[html.index('<section id="trends"') : html.index("</section>", html.index('<section id="trends"'))]
    for chart in ("outcomes", "boot", "suites"):
        assert f'<figure class="chart" id="chart-{chart}"><svg' in trends
    assert "outcomes per run (last 3)" in trends and "boot time per board" in trends and "suite durations" in trends
    assert ">native<" in trends and ">hist<" in trends  # the boot series of the board, the suite's durations
    # each test's strip: its outcomes in runs 1..3, oldest first
    coin = html[html.index("<code>test_coin[native]</code>") :]
    cells = re.findall(r'<i class="s-(\w+)" title="run (\d+)', coin[: coin.index("</summary>")])
    assert cells == [("failed", "1"), ("passed", "2"), ("failed", "3")]
    if backend is None:  # one screenshot is enough: the page is the same for both databases
        from tests.integration.test_html_report import _chromium

        png = tmp_path / "trends.png"
        page = (root / "run3-report.html").as_uri()
        shot = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1400,1100", page)
        assert shot.returncode == 0, shot.stderr[-2000:]
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1400, 1100)
        assert len(data) > 40_000  # charts drawn, not a blank page
        shutil.copy(png, root / "trends.png")
        dom = _chromium(tmp_path, "--dump-dom", page)
        assert dom.returncode == 0 and dom.stdout.count("<svg") >= 3 and 'id="chart-boot"' in dom.stdout


def test_quarantine_fed_from_history_makes_the_flaky_failure_expected(project):
    """Last (it adds a fourth run): --hil-quarantine-flaky turns the coin's failure into an expected
    failure with the history's reason; the regression, not flaky, still fails the run."""
    root, backend, _ = project
    history = [f"--hil-history={backend}"] if backend else []
    env = {**os.environ, "HIL_TEST_COIN_SEED": str(COIN[0])}
    env.pop("HIL_HISTORY", None)
    done = subprocess.run(
        [HIL, "run", "--suite", "suites/hist", "--board", "native", "--out", str(root / "out"),
         f"--targets={root / 'targets'}", *history, "--hil-quarantine-flaky", "-p", "no:labgrid"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    from harness.report.junit import read_cases

    cases = {c.name: c for c in read_cases(root / "out" / "junit.xml")}
    assert cases["test_coin[native]"].outcome == "xfailed"
    assert "hil: quarantined: flaky in history on native (flip rate 1.00 over 3 runs)" in cases[
        "test_coin[native]"].message
    assert cases["test_regress[native]"].outcome == "failed" and cases["test_steady[native]"].outcome == "passed"


def test_under_xdist_only_the_controller_writes(tmp_path):
    """Two workers: the run lands once, with every test's code hash and the board's facts (sent
    along with the workers' reports)."""
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "native.toml").write_text((REPO / "targets" / "native.toml").read_text())
    (tmp_path / "firmware_py").symlink_to(REPO / "firmware_py")
    (tmp_path / "suites" / "hist").mkdir(parents=True)
    (tmp_path / "suites" / "hist" / "test_hist.py").write_text(SUITE)
    env = {**os.environ, "HIL_TEST_COIN_SEED": str(COIN[1])}
    env.pop("HIL_HISTORY", None)
    done = subprocess.run(
        [HIL, "run", "--suite", "suites/hist", "--board", "native", "--out", str(tmp_path / "out"), "-n", "2",
         f"--targets={tmp_path / 'targets'}", "-p", "no:labgrid"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "hil: history: run 1 recorded in" in done.stdout
    from harness.history.queries import boards_of, recent_run_ids, results_of
    from harness.history.store import open_store, resolve_url

    store = open_store(resolve_url("", tmp_path / "out"))
    try:
        assert recent_run_ids(store, 10) == [1]
        results = results_of(store, [1])
        (board,) = boards_of(store, [1])
    finally:
        store.close()
    assert sorted(r.nodeid.split("::")[1] for r in results) == ["test_coin[native]", "test_regress[native]",
                                                                "test_steady[native]"]  # fmt: skip
    assert all(r.outcome == "passed" and r.code_hash and r.image_digest for r in results)
    assert len({r.code_hash for r in results}) == 3  # one per test function
    assert board["name"] == "native" and board["boot_seconds"] > 0
