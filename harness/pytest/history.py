"""Run history in the plugin: every run and test result is recorded (harness/history/), unless
``--hil-history off``; ``--baseline REF`` labels problems NEW / KNOWN / FLAKY and former problems
FIXED; ``--fail-on new`` makes the status red only for NEW ones; ``--hil-quarantine-flaky`` turns
the failures of tests that history calls flaky into expected failures.

Only the controller writes (under xdist the workers' reports reach it, as JUnit's do). A database
that cannot be opened or written costs one warning line, never a result or the run's status."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import inspect
import json
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import HarnessError, one_line
from harness.report.junit import FIRST_ERROR_PROPERTY, INFRA_PROPERTY, RETRIED_PROPERTY
from harness.report.trends import TRENDS_FILE

CODE_HASH = pytest.StashKey[str]()
_QUARANTINE = pytest.StashKey[str]()  # on an item: why its failure is an expected one (--hil-quarantine-flaky)
WINDOW = 30


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil history", "run history, flakiness and baselines")
    group.addoption("--hil-history", default=os.environ.get("HIL_HISTORY", ""), metavar="off|PATH|URL",
                    help="where runs are recorded: off, a SQLite file or a database URL (postgresql://...); "
                    "default $HIL_HISTORY or history.sqlite beside --hil-logs (hil-out/history.sqlite)")
    group.addoption("--hil-label", default=os.environ.get("HIL_LABEL"), metavar="LABEL",
                    help="label this run in the history (a branch name; default $HIL_LABEL or the git branch)")
    group.addoption("--baseline", "--hil-baseline", dest="hil_baseline", default=None, metavar="REF",
                    help="compare with earlier runs: a run id, last, last~N, LABEL or LABEL~N (the N newest runs "
                    "labelled LABEL); labels problems NEW, KNOWN, FLAKY and former problems FIXED")
    group.addoption("--fail-on", "--hil-fail-on", dest="hil_fail_on", choices=("any", "new"), default="any",
                    help="any (default): any failure or error makes the status red; new: only NEW ones "
                    "(regressions against --baseline)")
    group.addoption("--hil-history-window", type=int, default=WINDOW, metavar="N",
                    help=f"flakiness looks at the N newest runs (default {WINDOW})")
    group.addoption("--hil-quarantine-flaky", action="store_true", default=False,
                    help="a failure of a test history calls flaky on its board (same test code) is reported "
                    "as an expected failure, not a failure")


def pytest_configure(config: pytest.Config) -> None:
    from harness.history.store import resolve_url  # SQLAlchemy is imported only where a run needs it

    ref, fail_on = config.getoption("hil_baseline"), config.getoption("hil_fail_on")
    setting = config.getoption("hil_history")
    url = resolve_url(setting, Path(config.getoption("hil_logs")).parent)
    if (ref or fail_on == "new" or config.getoption("hil_quarantine_flaky")) and url is None:
        raise pytest.UsageError("--baseline, --fail-on new and --hil-quarantine-flaky read the history: "
                                "drop --hil-history off (or HIL_HISTORY=off)")
    if fail_on == "new" and not ref:
        raise pytest.UsageError("--fail-on new compares with a baseline: add --baseline REF (e.g. --baseline main)")
    if ref:
        from harness.history.baseline import parse_ref

        try:
            parse_ref(ref)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    if config.getoption("hil_history_window") < 1:
        raise pytest.UsageError("--hil-history-window must be >= 1")
    if hasattr(config, "workerinput"):
        return
    if xmlpath := getattr(config.option, "xmlpath", None):  # trends of an earlier run must not reach this report
        Path(xmlpath).with_name(TRENDS_FILE).unlink(missing_ok=True)
    if url is not None:  # only the controller writes
        recorder = HistoryRecorder(url, time.time())
        config.pluginmanager.register(recorder, "hil-history")
        config.pluginmanager.register(_RecordLast(recorder), "hil-history-record")


# --- every process: the test code's hash travels with its reports (xdist serialises extra attributes)


def code_hash(item: pytest.Item) -> str:
    """The test function's source, hashed (its file's when the source cannot be had): a flaky verdict
    holds only for the same test code, and editing one test does not reset the others' history."""
    if (known := item.stash.get(CODE_HASH, None)) is not None:
        return known
    try:
        text = inspect.getsource(getattr(item, "function", None) or item.obj).encode()
    except (TypeError, OSError, AttributeError):
        try:
            text = Path(item.path).read_bytes()
        except OSError:
            text = item.nodeid.encode()
    item.stash[CODE_HASH] = digest = hashlib.sha256(text).hexdigest()[:16]
    return digest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    report.hil_code = code_hash(item)
    reason = item.stash.get(_QUARANTINE, None)
    infra = call.excinfo is not None and call.excinfo.errisinstance(HarnessError)  # stays an error
    if reason and report.when == "call" and report.failed and not hasattr(report, "wasxfail") and not infra:
        report.outcome = "skipped"
        report.wasxfail = reason


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--hil-quarantine-flaky: mark the tests history calls flaky on their board, with this code."""
    if not config.getoption("hil_quarantine_flaky"):
        return
    from harness.history.flaky import flaky_tests
    from harness.history.queries import recent_run_ids, results_of
    from harness.history.store import open_store, resolve_url

    url = resolve_url(config.getoption("hil_history"), Path(config.getoption("hil_logs")).parent)
    try:
        store = open_store(url)
        try:
            groups = flaky_tests(results_of(store, recent_run_ids(store, config.getoption("hil_history_window"))))
        finally:
            store.close()
    except HarnessError as exc:
        _warn(config, f"--hil-quarantine-flaky: {exc}; no test is quarantined")
        return
    known = {(g.nodeid, g.code_hash): g for g in groups}  # the board is in the nodeid (its parameter)
    for item in items:
        group = known.get((item.nodeid, code_hash(item)))
        if group:
            item.stash[_QUARANTINE] = (
                f"hil: quarantined: flaky in history on {group.board or 'this board'} (flip rate "
                f"{group.flip_rate:.2f} over {group.runs} runs)"
            )


def _warn(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"hil: history: {message}", yellow=True)
    else:
        import sys

        print(f"hil: history: {message}", file=sys.stderr)


# --- the controller: collect results, label them, record the run ------------------------------------


WARM_WAIT = 90.0  # seconds: the migration lock's own wait (harness/history/store.py) is 60


def _warm_store(url: str) -> None:
    try:
        from harness.history.store import open_store

        open_store(url).close()
    except Exception:  # reported by the open that records the run
        pass
    # The disposed engine is garbage in reference cycles with weakref callbacks (SQLAlchemy's event
    # registry): collect it here. Collected by the main thread mid-test, a callback can be where a
    # Ctrl-C lands, and Python swallows it there as "Exception ignored" (seen: a lost Ctrl-C).
    gc.collect()


class _RecordLast:
    """HistoryRecorder.record as a sessionfinish that runs after the others (JUnit's included)."""

    def __init__(self, recorder: HistoryRecorder) -> None:
        self.recorder = recorder

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.recorder.record(session)


@dataclass
class _Test:
    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    first_error: str | None = None
    props: dict[str, str] = field(default_factory=dict)
    code_hash: str | None = None


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr or "")
    return one_line((text.strip().splitlines() or [""])[0], 500)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_facts(root: Path) -> tuple[str | None, bool | None, str]:
    """(commit, dirty, branch) of the project under test; (None, None, "") outside a git checkout."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return None, None, ""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD") or ""
    return commit, (bool(status) if status is not None else None), ("" if branch == "HEAD" else branch)


@dataclass(eq=False)  # a plugin object: hashed by identity
class HistoryRecorder:
    url: str
    started: float
    tests: dict[str, _Test] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # nodeid -> label (harness/pytest/junit.py reads it)
    messages: list[str] = field(default_factory=list)
    run_id: int | None = None
    baseline_runs: list[int] | None = None  # None: no baseline was read
    unavailable: bool = False  # the database could not be opened (said once)
    warming: threading.Thread | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.warming is None and any(k == "board" for k, _ in report.user_properties):
            self._warm()
        t = self.tests.setdefault(report.nodeid, _Test(report.nodeid))
        t.duration += report.duration or 0.0
        t.code_hash = getattr(report, "hil_code", None) or t.code_hash
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.failed:
                infra = any(k == INFRA_PROPERTY for k, _ in report.user_properties)
                t.outcome, t.first_error = ("error" if infra else "failed"), _first_line(report)
            elif report.skipped:
                t.outcome = "xfailed" if xfail else "skipped"
            else:
                t.outcome = "passed"
        elif report.failed and t.outcome in ("passed", "skipped", "xfailed"):  # setup or teardown broke
            t.outcome, t.first_error = "error", _first_line(report)
        elif report.when == "setup" and report.skipped:
            t.outcome = "xfailed" if xfail else "skipped"
        if report.when == "teardown":
            t.props = {k: str(v) for k, v in report.user_properties}

    def _warm(self) -> None:
        """Once a board test has run (the run will be recorded): import SQLAlchemy and Alembic and
        bring the schema up to date while the other tests run, not after the last one (half a
        second; the host mostly waits on boards meanwhile). A fault is left for the open that
        records the run to report."""
        self.warming = threading.Thread(target=_warm_store, args=(self.url,), name="hil-history-warm", daemon=True)
        self.warming.start()

    def results(self) -> list:
        from harness.history.records import TestResult

        out = []
        for t in self.tests.values():
            first = t.first_error or (t.props.get(FIRST_ERROR_PROPERTY) or "").split("\n")[0] or None
            out.append(TestResult(
                nodeid=t.nodeid, board=t.props.get("board", ""), outcome=t.outcome, duration=round(t.duration, 4),
                retried=RETRIED_PROPERTY in t.props, first_error=first, code_hash=t.code_hash,
                image_digest=t.props.get("image_digest") or None, label=self.labels.get(t.nodeid),
            ))  # fmt: skip
        return out

    def boards(self) -> list:
        from harness.history.records import BoardInfo

        found: dict[str, BoardInfo] = {}
        for t in self.tests.values():
            p = t.props
            if not p.get("board") or p["board"] in found or not p.get("image_digest"):
                continue
            boot = p.get("boot_seconds")
            found[p["board"]] = BoardInfo(p["board"], p.get("image_digest"), p.get("micropython_version"),
                                          p.get("banner"), float(boot) if boot else None)  # fmt: skip
        return list(found.values())

    @pytest.hookimpl(tryfirst=True)  # before JUnit is written (it carries the labels) and the summary
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Baseline labels and --fail-on new (only when asked for: they read the history)."""
        config = session.config
        ref = config.getoption("hil_baseline")
        if not ref or not any(t.props.get("board") for t in self.tests.values()):
            return
        with self._store(config, "no labels this run") as store:
            if store is not None:
                self._label(config, store, ref)
                self._judge(session)

    def record(self, session: pytest.Session) -> None:
        """The run into the history: after JUnit is written (a second Ctrl-C during the database
        work loses this record, never the report), still before the summary that says so."""
        if not any(t.props.get("board") for t in self.tests.values()):
            return  # no board test ran (e.g. the harness's own unit tests): nothing for the history
        with self._store(session.config, "not recorded") as store:
            if store is not None:
                self._record(session.config, store, session)

    @contextlib.contextmanager
    def _store(self, config: pytest.Config, failing: str):
        from harness.history.store import open_store

        if self.warming is not None:
            self.warming.join(WARM_WAIT)
        if self.unavailable:  # said once: the labels' attempt already failed
            yield None
            return
        try:
            store = open_store(self.url)
        except HarnessError as exc:
            self.unavailable = True
            self._cannot(config, exc)
            yield None
            return
        try:
            yield store
        except Exception as exc:  # whatever goes wrong here, the run's results and status stand
            self.messages.append(f"{failing}: {type(exc).__name__}: {one_line(exc, 300)}")
        finally:
            store.close()

    def _cannot(self, config: pytest.Config, exc: Exception) -> None:
        self.messages.append(f"not recorded: {exc} (the results are in the report; --hil-history off to skip)")
        if config.getoption("hil_fail_on") == "new":
            self.messages.append("--fail-on new: no baseline could be read, so the status stays strict")

    def _label(self, config: pytest.Config, store, ref: str) -> None:
        from harness.history.baseline import label_results, parse_ref, resolve
        from harness.history.flaky import flaky_tests
        from harness.history.queries import recent_run_ids, results_of

        try:
            ids = resolve(store, parse_ref(ref))
            baseline = results_of(store, ids)
            window = results_of(store, recent_run_ids(store, config.getoption("hil_history_window")))
        except HarnessError as exc:
            self.messages.append(f"{exc}; no labels this run")
            if config.getoption("hil_fail_on") == "new":
                self.messages.append("--fail-on new: no baseline could be read, so the status stays strict")
            return
        flaky = {(g.nodeid, g.board, g.image_digest, g.code_hash): g for g in flaky_tests(window)}
        labels = label_results(self.results(), baseline, flaky)
        self.labels = {nodeid: label for (nodeid, _), label in labels.items()}
        self.baseline_runs = ids

    def _judge(self, session: pytest.Session) -> None:
        """--fail-on new: a run whose problems all have a baseline label other than NEW is green."""
        if session.config.getoption("hil_fail_on") != "new" or session.exitstatus != pytest.ExitCode.TESTS_FAILED:
            return
        if self.baseline_runs is None:
            return  # no baseline read: strict
        problems = [r for r in self.results() if r.outcome in ("failed", "error")]
        if problems and all(self.labels.get(r.nodeid) in ("KNOWN", "FLAKY") for r in problems):
            session.exitstatus = pytest.ExitCode.OK
            self.messages.append(f"--fail-on new: {len(problems)} known or flaky problem(s), no NEW one: status 0")

    def _record(self, config: pytest.Config, store, session: pytest.Session) -> None:
        from harness.history.recorder import record_run
        from harness.history.records import RunInfo

        commit, dirty, branch = git_facts(config.rootpath)
        run = RunInfo(
            started=self.started, finished=time.time(), host=socket.gethostname(),
            label=config.getoption("hil_label") or branch, project=str(config.rootpath), git_commit=commit,
            git_dirty=dirty, options=[_no_password(str(a)) for a in config.invocation_params.args],
            exit_status=int(session.exitstatus), baseline=config.getoption("hil_baseline"),
        )  # fmt: skip
        try:
            self.run_id = record_run(store, run, self.boards(), self.results())
        except HarnessError as exc:
            self._cannot(config, exc)
            return
        if xmlpath := getattr(config.option, "xmlpath", None):
            self._write_trends(store, Path(xmlpath).with_name(TRENDS_FILE))

    def _write_trends(self, store, path: Path) -> None:
        """The numbers behind the HTML report's trend charts, beside the JUnit file it is made from
        (harness/report/trends.py reads them); the strips keyed by JUnit classname::name."""
        from _pytest.junitxml import mangle_test_address

        from harness.history.trends import trend_data

        try:
            data = trend_data(store, self.run_id)
        except HarnessError as exc:
            self.messages.append(f"no trend charts: {exc}")
            return
        strips = {}
        for nodeid, outcomes in data["strips"].items():
            names = mangle_test_address(nodeid)
            strips[f"{'.'.join(names[:-1])}::{names[-1]}"] = outcomes
        data["strips"] = strips
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data), encoding="utf-8")
        except OSError as exc:
            self.messages.append(f"no trend charts: {path}: {exc.strerror or exc}")

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if self.labels:
            ref = config.getoption("hil_baseline")
            terminalreporter.write_sep("-", f"hil: against baseline {ref} (runs {_ids(self.baseline_runs)})")
            errors = {r.nodeid: r.first_error or "" for r in self.results()}
            width = max(len(n) for n in self.labels)
            for nodeid, label in sorted(self.labels.items(), key=lambda kv: (_ORDER.index(kv[1]), kv[0])):
                colour = {"NEW": "red", "KNOWN": "yellow", "FLAKY": "purple", "FIXED": "green"}[label]
                terminalreporter.write(f"{label:<6} ", **{colour: True, "bold": True})
                terminalreporter.write_line(f"{nodeid:<{width}}  {errors.get(nodeid, '')[:120]}".rstrip())
        for message in self.messages:
            terminalreporter.write_line(f"hil: history: {message}", yellow=True)
        if self.run_id is not None:
            terminalreporter.write_line(f"hil: history: run {self.run_id} recorded in {_short(self.url)}")


_ORDER = ("NEW", "FLAKY", "KNOWN", "FIXED")
_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _no_password(arg: str) -> str:
    """A command-line argument fit to be stored: a database URL's password (--hil-history) masked."""
    return _PASSWORD.sub(r"\1***@", arg)


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))


def _short(url: str) -> str:
    from harness.history.store import redacted

    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else redacted(url)
