"""Infrastructure errors (the board died, would not boot, the port vanished) are retried
``--hil-retries`` times on a freshly restarted board; test failures never are. A board with
``--hil-quarantine-after`` infrastructure errors is quarantined: its remaining tests are reported
as errors without booting it again. Harness errors are reported as one line, never a traceback.

This is the one module that leans on pytest internals (runtestprotocol, fixture caches, the setup
state), as pytest-rerunfailures does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _pytest.runner import CallInfo, runtestprotocol

from harness.board import Board
from harness.errors import BoardCrashed, ConfigError, HarnessError, InfrastructureError
from harness.lab.pool import DeviceBusy
from harness.pytest import evidence
from harness.pytest.fixtures import board_properties
from harness.pytest.state import CONSOLE_SECTION, INFRA_ERROR, POOL, STATE, RunState, board_param
from harness.report.junit import FIRST_ERROR_PROPERTY, INFRA_PROPERTY, QUARANTINE_PROPERTY, RETRIED_PROPERTY


class Quarantined(InfrastructureError):
    """The board failed too often this run; its remaining tests are not run."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    # JUnit takes a test case's properties from the item when its last report is written.
    props = item.user_properties
    name = board_param(item)
    if name is not None and not any(k == "board" for k, _ in props):
        running = (getattr(item, "funcargs", None) or {}).get("board")
        if isinstance(running, Board):
            props.extend(board_properties(running).items())
        else:
            props.append(("board", name))
    if call.excinfo is None or not call.excinfo.errisinstance(HarnessError):
        return
    exc = call.excinfo.value
    # A harness error is one clear line (plus console tail), never a traceback of our internals.
    report.longrepr = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BoardCrashed) and report.when == "call":
        return  # the code under test crashed the board: a test failure, not retried (the pool restarts it)
    if isinstance(exc, (InfrastructureError, ConfigError)):
        if not any(k == INFRA_PROPERTY for k, _ in props):
            props.append((INFRA_PROPERTY, type(exc).__name__))
        if report.when == "call" and report.failed:  # for pytest_report_teststatus (xdist sends it along)
            report.user_properties.append((INFRA_PROPERTY, type(exc).__name__))
    if isinstance(exc, InfrastructureError) and not isinstance(exc, (DeviceBusy, Quarantined)):
        item.stash.setdefault(INFRA_ERROR, report.longrepr)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """An infrastructure error in a test's call phase is an error in pytest's terminal line too
    ("1 error", E, ERROR), as it is in JUnit (<error>), not a failure."""
    if report.when == "call" and report.failed and any(k == INFRA_PROPERTY for k, _ in report.user_properties):
        return "error", "E", "ERROR"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Board tests: retry infrastructure errors on a fresh board, and stop using boards that keep
    failing. Only the final attempt is reported (with hil_retried and the first error kept)."""
    name = board_param(item)
    if name is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    state = item.config.stash[STATE]
    if name in state.quarantined and not _skipped_anyway(item):
        reports = _quarantine_reports(item, state.quarantined[name])
    else:
        reports = _run_with_retries(item, nextitem, name, state)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _skipped_anyway(item: pytest.Item) -> bool:
    from _pytest.skipping import evaluate_skip_marks

    try:
        return evaluate_skip_marks(item) is not None
    except Exception:
        return False


def _run_with_retries(item: pytest.Item, nextitem: pytest.Item | None, name: str, state: RunState):
    config = item.config
    pool = config.stash[POOL]
    retries, limit = config.getoption("hil_retries"), config.getoption("hil_quarantine_after")
    saved = list(item.user_properties)
    first_error = None
    attempt = 0
    while True:
        if INFRA_ERROR in item.stash:
            del item.stash[INFRA_ERROR]
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        error = item.stash.get(INFRA_ERROR, None)
        if error is None:
            break
        pool.mark_stale(name)  # whatever happens next, this board is not used again as it is
        count = state.infra_errors[name] = state.infra_errors.get(name, 0) + 1
        if limit and count >= limit:
            state.quarantined[name] = f"board {name} quarantined after {count} infrastructure errors (last: {error})"
            pool.release(name)
            for report in reports:
                report.user_properties.append((QUARANTINE_PROPERTY, state.quarantined[name]))
            break
        if attempt >= retries:
            break
        attempt += 1
        first_error = first_error or error
        evidence.note(item, f"retry {attempt} of {retries} on a fresh board after: {error.splitlines()[0][:300]}")
        _forget_failed_fixtures(item)
        item.user_properties[:] = saved  # the retry's own properties: board facts of the fresh board
        item.add_report_section(
            "call", CONSOLE_SECTION, f"\n--- hil: {error.splitlines()[0][:300]}\n--- hil: retry {attempt} of "
            f"{retries} on a fresh board ---\n",
        )  # fmt: skip
    if first_error:
        extra = [(RETRIED_PROPERTY, str(attempt)), (FIRST_ERROR_PROPERTY, first_error[:2000])]
        item.user_properties.extend(extra)
        for report in reports:
            report.user_properties.extend(extra)
    return reports


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """A fixture whose setup raised caches the exception (the session-scoped board would re-raise
    it for every later test): drop such results so the retry sets them up again, as
    pytest-rerunfailures does."""
    for fixturedefs in item._fixtureinfo.name2fixturedefs.values():
        for fixturedef in fixturedefs or ():
            cached = fixturedef.cached_result
            if cached is not None and cached[2] is not None:
                try:  # runs its finalizers (none ran: setup failed) and clears the cache
                    fixturedef.finish(request=SimpleNamespace(node=item))
                except Exception:
                    fixturedef.cached_result = None
    setupstate = item.session._setupstate
    for node, (finalizers, exc) in list(setupstate.stack.items()):
        if exc is not None and node is not item:
            setupstate.stack[node] = (finalizers, None)


def _quarantine_reports(item: pytest.Item, message: str):
    def fail() -> None:
        raise Quarantined(message)

    ihook = item.ihook
    setup = ihook.pytest_runtest_makereport(item=item, call=CallInfo.from_call(fail, when="setup"))
    setup.user_properties.append((QUARANTINE_PROPERTY, message))
    teardown = ihook.pytest_runtest_makereport(item=item, call=CallInfo.from_call(lambda: None, when="teardown"))
    teardown.user_properties = [*item.user_properties, (QUARANTINE_PROPERTY, message)]
    return [setup, teardown]
