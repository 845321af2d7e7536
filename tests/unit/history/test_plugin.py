"""harness/pytest/history.py without boards: outcomes from pytest's reports, the code hash that
travels with them, labels and --fail-on new at the end of a run, and a history that cannot be
written costing one warning, never the status."""

from __future__ import annotations

import gc
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.history.queries import recent_run_ids, results_of
from harness.history.store import open_store
from harness.pytest.history import HistoryRecorder, git_facts
from harness.report.junit import FIRST_ERROR_PROPERTY, INFRA_PROPERTY, RETRIED_PROPERTY

BOARD = [("board", "native"), ("image_digest", "d1"), ("micropython_version", "1.24.0"),
         ("banner", "MicroPython v1.24.0"), ("boot_seconds", "0.120")]  # fmt: skip


def rep(nodeid, when, outcome="passed", props=(), longrepr=None, wasxfail=None, code="c1") -> pytest.TestReport:
    r = pytest.TestReport(nodeid, ("t.py", 1, nodeid), {}, outcome, longrepr, when, user_properties=list(props),
                          duration=0.5)  # fmt: skip
    r.hil_code = code
    if wasxfail is not None:
        r.wasxfail = wasxfail
    return r


def feed(recorder, nodeid, call="passed", setup="passed", teardown="passed", props=BOARD, code="c1", **kw):
    recorder.pytest_runtest_logreport(rep(nodeid, "setup", setup, longrepr="E setup broke" if setup == "failed"
                                          else None, code=code))  # fmt: skip
    if setup == "passed":
        recorder.pytest_runtest_logreport(rep(nodeid, "call", call, longrepr="assert 1 == 2\nmore" if call == "failed"
                                              else None, code=code, **kw))  # fmt: skip
    recorder.pytest_runtest_logreport(rep(nodeid, "teardown", teardown, props=props, code=code,
                                          longrepr="E teardown broke" if teardown == "failed" else None))



def end_session(recorder: HistoryRecorder, s) -> None:
    """The session's end as pytest runs it: labels first (before JUnit), the record last."""
    recorder.pytest_sessionfinish(s)
    recorder.record(s)

def test_outcomes_from_reports():
    r = HistoryRecorder("sqlite://", 0.0)
    feed(r, "t::ok[native]")
    feed(r, "t::bad[native]", call="failed")
    feed(r, "t::infra[native]", call="failed", props=[*BOARD, (INFRA_PROPERTY, "BoardDied")])
    feed(r, "t::setup[native]", setup="failed")
    feed(r, "t::teardown[native]", teardown="failed")
    feed(r, "t::xf[native]", call="skipped", wasxfail="known")
    feed(r, "t::skip[native]", setup="skipped")
    feed(r, "t::retried[native]", props=[*BOARD, (RETRIED_PROPERTY, "1"), (FIRST_ERROR_PROPERTY, "BoardDied: x\ny")])
    results = {x.nodeid: x for x in r.results()}
    assert {n: x.outcome for n, x in results.items()} == {
        "t::ok[native]": "passed", "t::bad[native]": "failed", "t::infra[native]": "failed",
        "t::setup[native]": "error", "t::teardown[native]": "error", "t::xf[native]": "xfailed",
        "t::skip[native]": "skipped", "t::retried[native]": "passed",
    }  # fmt: skip  (INFRA_PROPERTY rides on the call report itself; see the next test)
    assert results["t::bad[native]"].first_error == "assert 1 == 2"
    assert results["t::setup[native]"].first_error == "E setup broke"
    assert results["t::retried[native]"].retried and results["t::retried[native]"].first_error == "BoardDied: x"
    assert results["t::ok[native]"].duration == 1.5 and results["t::ok[native]"].code_hash == "c1"
    assert results["t::ok[native]"].image_digest == "d1" and results["t::ok[native]"].board == "native"
    (board,) = r.boards()
    assert (board.name, board.image_digest, board.boot_seconds, board.banner) == ("native", "d1", 0.12,
                                                                                  "MicroPython v1.24.0")


def test_an_infrastructure_error_in_the_call_is_an_error():
    r = HistoryRecorder("sqlite://", 0.0)
    r.pytest_runtest_logreport(rep("t::x[native]", "setup"))
    r.pytest_runtest_logreport(rep("t::x[native]", "call", "failed", props=[(INFRA_PROPERTY, "BoardDied")],
                                   longrepr="BoardDied: gone"))  # fmt: skip
    r.pytest_runtest_logreport(rep("t::x[native]", "teardown", props=BOARD))
    (result,) = r.results()
    assert (result.outcome, result.first_error) == ("error", "BoardDied: gone")


OPTIONS = {"hil_baseline": None, "hil_fail_on": "any", "hil_history_window": 30, "hil_label": "main"}


def session(tmp_path: Path, status=pytest.ExitCode.TESTS_FAILED, xmlpath=None, **options):
    opts = {**OPTIONS, **options}
    config = SimpleNamespace(getoption=opts.__getitem__, rootpath=tmp_path, option=SimpleNamespace(xmlpath=xmlpath),
                             invocation_params=SimpleNamespace(args=("--board=native",)))  # fmt: skip
    return SimpleNamespace(config=config, exitstatus=status)


def finish(url, tmp_path, outcomes: dict[str, str], code="c1", **options):
    r = HistoryRecorder(url, 0.0)
    for nodeid, outcome in outcomes.items():
        feed(r, nodeid, call=outcome, code=code)
    failed = any(o == "failed" for o in outcomes.values())
    s = session(tmp_path, pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK, **options)
    end_session(r, s)
    return r, s


def test_runs_are_recorded_labelled_and_judged(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    r1, s1 = finish(url, tmp_path, {"t::a[native]": "passed", "t::b[native]": "passed"})
    assert r1.run_id == 1 and r1.messages == [] and s1.exitstatus == pytest.ExitCode.OK
    # the test was edited (new code) and now fails: a regression, not a flake of the old code
    r2, s2 = finish(url, tmp_path, {"t::a[native]": "failed", "t::b[native]": "passed"}, hil_baseline="main",
                    hil_fail_on="new", code="c2")  # fmt: skip
    assert r2.labels == {"t::a[native]": "NEW"} and s2.exitstatus == pytest.ExitCode.TESTS_FAILED
    r3, s3 = finish(url, tmp_path, {"t::a[native]": "failed", "t::b[native]": "passed"}, hil_baseline="main",
                    hil_fail_on="new", code="c2")  # fmt: skip
    assert r3.labels == {"t::a[native]": "KNOWN"} and s3.exitstatus == pytest.ExitCode.OK
    store = open_store(url)
    try:
        assert recent_run_ids(store, 9) == [3, 2, 1]
        assert [(x.run_id, x.baseline_label) for x in results_of(store, [2, 3], nodeid_like="t::a")] == [
            (2, "NEW"), (3, "KNOWN")]
    finally:
        store.close()


def test_trend_numbers_are_written_beside_the_junit_file(tmp_path):
    import json

    r = HistoryRecorder(f"sqlite:///{tmp_path / 'h.sqlite'}", 0.0)
    feed(r, "suites/smoke/test_smoke.py::test_a[native]")
    end_session(r, session(tmp_path, pytest.ExitCode.OK, xmlpath=str(tmp_path / "out" / "junit.xml")))
    data = json.loads((tmp_path / "out" / "hil-trends.json").read_text())
    assert data["runs"][0]["passed"] == 1 and data["boot"] == {"native": [[1, 0.12]]}
    assert data["strips"] == {"suites.smoke.test_smoke::test_a[native]": [[1, "passed"]]}  # JUnit names


def test_a_history_that_cannot_be_written_is_a_warning_and_keeps_the_status(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r, s = finish(f"sqlite:///{blocker / 'h.sqlite'}", tmp_path, {"t::a[native]": "failed"}, hil_baseline="main",
                  hil_fail_on="new")  # fmt: skip
    assert s.exitstatus == pytest.ExitCode.TESTS_FAILED  # no baseline read: strict
    assert r.run_id is None and len(r.messages) == 2
    assert r.messages[0].startswith("not recorded: history sqlite:///") and "\n" not in r.messages[0]
    assert "status stays strict" in r.messages[1]


def test_an_unknown_baseline_leaves_the_run_strict_and_still_records_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    r, s = finish(url, tmp_path, {"t::a[native]": "failed"}, hil_baseline="release", hil_fail_on="new")
    assert r.run_id == 1 and r.labels == {} and s.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "no earlier run labelled 'release'" in r.messages[0]


def test_a_run_without_board_tests_is_not_recorded(tmp_path):
    r = HistoryRecorder(f"sqlite:///{tmp_path / 'h.sqlite'}", 0.0)
    feed(r, "tests/unit/test_x.py::test_y", props=())
    end_session(r, session(tmp_path, pytest.ExitCode.OK))
    assert r.run_id is None and not (tmp_path / "h.sqlite").exists()


def test_the_store_is_readied_while_the_tests_run_once_a_board_test_has_run(tmp_path):
    db = tmp_path / "h.sqlite"
    r = HistoryRecorder(f"sqlite:///{db}", 0.0)
    feed(r, "tests/unit/test_x.py::test_y", props=())
    assert r.warming is None  # no board test yet: maybe nothing to record
    gc.collect()
    feed(r, "t::a[native]")
    assert r.warming is not None
    r.warming.join(60)
    # nothing of it is left for the main thread's collector, whose weakref callbacks (SQLAlchemy's
    # event registry) would be where a Ctrl-C lands and is swallowed
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = [o for o in gc.garbage if type(o).__module__.startswith(("sqlalchemy", "alembic"))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
    store = open_store(f"sqlite:///{db}", migrate=False)
    try:
        from harness.history.store import current_revision

        assert current_revision(store) is not None  # migrated before the run ended
    finally:
        store.close()
    end_session(r, session(tmp_path, pytest.ExitCode.OK))
    assert r.run_id == 1 and r.messages == []


def test_a_database_password_on_the_command_line_is_not_stored():
    from harness.pytest.history import _no_password

    assert _no_password("--hil-history=postgresql://lab:s3cr%40t@db/hil") == "--hil-history=postgresql://lab:***@db/hil"
    assert _no_password("--board=native") == "--board=native"
    assert _no_password("postgresql://lab@db/hil") == "postgresql://lab@db/hil"


def test_git_facts_of_the_project(tmp_path):
    assert git_facts(tmp_path) == (None, None, "")
    repo = Path(__file__).resolve().parents[3]
    if (repo / ".git").exists():  # a checkout (not an unpacked source archive)
        commit, dirty, _ = git_facts(repo)
        assert len(commit) == 40 and isinstance(dirty, bool)
