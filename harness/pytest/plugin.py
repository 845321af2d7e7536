"""pytest plugin (entry point ``hil``): boards as fixtures, capability skips, JUnit that tells
infrastructure errors from test failures and carries each test's console log.

    pytest --board mps2_an385 --board native suites/smoke
    pytest -n 2 --board mps2_an385 --board microbit --board native suites/smoke

Tests that use the ``board`` (session-scoped, booted once per board) or ``dut`` (the same board,
soft-reset before each test) fixture run once per selected board.

Parallel runs (pytest-xdist ``-n``): unless ``--dist`` is given, tests are scheduled *by board*
(every test of a board goes to the worker that has it booted), so each worker boots a board once;
QEMU and process boards are started per worker, serial devices are locked (harness/lab/pool.py).

Infrastructure errors (the board died, would not boot, the port vanished) are retried
``--hil-retries`` times on a freshly restarted board; test failures never are. A board with
``--hil-quarantine-after`` infrastructure errors is quarantined: its remaining tests are reported
as errors without booting it again, and the terminal summary lists it."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from _pytest.runner import CallInfo, runtestprotocol

from harness.board import Board
from harness.config.boards import BoardSpec, load_all, targets_dir
from harness.errors import ConfigError, HarnessError, InfrastructureError
from harness.lab.pool import BoardPool, DeviceBusy, candidates
from harness.report.junit import FIRST_ERROR_PROPERTY, INFRA_PROPERTY, QUARANTINE_PROPERTY, RETRIED_PROPERTY

CONSOLE_SECTION = "hil console"


class Quarantined(InfrastructureError):
    """The board failed too often this run; its remaining tests are not run."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop boards")
    group.addoption("--board", action="append", default=[], help="board to run on (repeatable), or tag:TAG for any "
                    "free board with that tag; default: $HIL_BOARDS or every target with default = true")
    group.addoption("--targets", default=None, help="directory of target files (default: ./targets)")
    group.addoption("--hil-logs", default="hil-out/logs", help="where console logs go (default: hil-out/logs)")
    group.addoption("--hil-retries", type=int, default=1, metavar="N",
                    help="retry a test N times on a fresh board after an infrastructure error (default 1)")
    group.addoption("--hil-quarantine-after", type=int, default=3, metavar="N",
                    help="stop using a board after N infrastructure errors in the run (default 3; 0: never)")
    group.addoption("--hil-lock-timeout", type=float, default=float(os.environ.get("HIL_LOCK_TIMEOUT", 30)),
                    metavar="S", help="wait up to S seconds for a serial device another process holds "
                    "(default $HIL_LOCK_TIMEOUT or 30)")


@dataclass
class RunState:
    """Per pytest process (each xdist worker has its own; a board's tests all run on one worker)."""

    infra_errors: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)


_pool_key = pytest.StashKey[BoardPool]()
_state_key = pytest.StashKey[RunState]()
_infra_key = pytest.StashKey[str]()  # on an item: the retriable infrastructure error of this attempt
_board_dist_key = pytest.StashKey[bool]()


def _terminal_log(config: pytest.Config):
    """Messages the user must see while a test runs (waiting for a busy device): past capture."""

    def log(message: str) -> None:
        capman = config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            sys.stderr.write(f"hil: {message}\n")
            sys.stderr.flush()

    return log


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Before xdist turns "-n N without --dist" into --dist load: remember to schedule by board instead.
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", None) == "no":
        config.stash[_board_dist_key] = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*caps): needs board capabilities (net, tls, can, fs, ...)")
    config.addinivalue_line("markers", "boards(*names): run only on these boards")
    if config.getoption("targets"):
        os.environ["HIL_TARGETS"] = str(Path(config.getoption("targets")).resolve())
    if config.getoption("hil_retries") < 0 or config.getoption("hil_quarantine_after") < 0:
        raise pytest.UsageError("--hil-retries and --hil-quarantine-after must be >= 0")
    log_dir = Path(config.getoption("hil_logs"))
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:  # each xdist worker boots its own boards: its own console logs
        log_dir = log_dir / worker
    timeout = config.getoption("hil_lock_timeout")
    config.stash[_pool_key] = BoardPool(log_dir, lock_timeout=timeout, log=_terminal_log(config))
    config.stash[_state_key] = RunState()


def selected_boards(config: pytest.Config) -> list[str]:
    names = config.getoption("board") or [n for n in os.environ.get("HIL_BOARDS", "").split(",") if n]
    if names:
        return list(dict.fromkeys(names))
    try:
        return [name for name, spec in load_all().items() if spec.default]
    except ConfigError:  # a broken file: run every file's name so the error lands on its tests
        return sorted(p.stem for p in targets_dir().glob("*.toml") if not p.stem.startswith("lab"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board" in metafunc.fixturenames:
        names = selected_boards(metafunc.config)
        metafunc.parametrize("board", names, indirect=True, scope="session", ids=names)


def _selector(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("board") if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, at collection, tests whose board lacks a required capability: no boot wasted."""
    specs: dict[str, list[BoardSpec] | None] = {}
    for item in items:
        name = _selector(item)
        if name is None:
            continue
        if name not in specs:
            try:
                specs[name] = candidates(name)
            except ConfigError:
                specs[name] = None  # the board fixture reports it as an error on each test
        boards = specs[name]
        if boards is None:
            continue
        only = item.get_closest_marker("boards")
        if only and not any(spec.name in only.args for spec in boards):
            item.add_marker(pytest.mark.skip(reason=f"only for boards {', '.join(only.args)}"))
        for marker in item.iter_markers("requires"):
            # a tag may lease any of several boards: every one of them must have the capability
            missing = sorted({cap for spec in boards for cap in marker.args if not spec.capabilities.has(cap)})
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"board {name} lacks capability: {', '.join(missing)}"))


# --- scheduling under xdist ---------------------------------------------------------------------


def board_of_nodeid(nodeid: str, names: list[str]) -> str | None:
    """The board parameter in a test id like ``suite.py::test_x[native]`` or ``...[3-native]``."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.index("[", nodeid.rfind("::") + 2 if "::" in nodeid else 0) + 1 : -1]
    for name in sorted(names, key=len, reverse=True):  # longest first: "esp32-1" before "esp32"
        if params == name or params.startswith(name + "-") or params.endswith("-" + name) or f"-{name}-" in params:
            return name
    return None


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not config.stash.get(_board_dist_key, False) or config.getvalue("dist") != "load":
        return None  # the user chose a --dist mode: respect it
    from xdist.scheduler import LoadScopeScheduling

    names = selected_boards(config)

    class BoardScheduling(LoadScopeScheduling):
        """One work unit per board: the worker that boots a board runs all of its tests."""

        def _split_scope(self, nodeid: str) -> str:
            board = board_of_nodeid(nodeid, names)
            return f"board:{board}" if board else super()._split_scope(nodeid)

    return BoardScheduling(config, log)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def board_pool(request: pytest.FixtureRequest) -> BoardPool:
    pool = request.config.stash[_pool_key]
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, board_pool: BoardPool) -> Board:
    """The board named by the test's parameter, booted once for the session."""
    name = request.param
    yield board_pool.get(name)
    board_pool.release(name)


@pytest.fixture(autouse=True)
def _hil_fresh_board(request: pytest.FixtureRequest) -> None:
    """Before each board test: a board that died or broke in an earlier test is restarted."""
    name = _selector(request.node)
    if name is not None and "board" in request.fixturenames:
        request.getfixturevalue("board")
        request.config.stash[_pool_key].ensure_fresh(name)


@pytest.fixture
def dut(request: pytest.FixtureRequest, board: Board) -> Board:
    """The board, soft-reset to a clean interpreter before the test; the test's console output is
    attached to its report and the board's facts to its JUnit properties."""
    item = request.node
    if board.spec.console.reset == "soft" and not board.fresh:
        board.soft_reset()
    board.fresh = False
    start = board.console.received if board.console else 0
    mark = board.console_log.stat().st_size if board.console_log.exists() else 0
    capture = _start_capture(board, item)
    yield board
    if capture:
        _stop_capture(board, item, *capture)
    if board.console and board.console.received > start:
        with open(board.console_log, "rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", "replace").replace("\r", "")
        item.add_report_section("call", CONSOLE_SECTION, printable(text[-20000:]))


def _start_capture(board: Board, item: pytest.Item) -> tuple[str, Path] | None:
    """Per-test pcap of the board's traffic (QEMU filter-dump on its netdev), when it has a network."""
    if board.launcher is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
    path = board.log_dir / "pcaps" / f"{safe}.pcap"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    ident = board.launcher.start_capture(path)
    return (ident, path) if ident else None


def _stop_capture(board: Board, item: pytest.Item, ident: str, path: Path) -> None:
    if board.launcher is not None:
        board.launcher.stop_capture(ident)
    if path.exists():
        item.user_properties.append(("pcap", str(path)))


def printable(text: str) -> str:
    """Console text fit for XML and HTML: control bytes (raw REPL framing) shown as ^A, ^D."""
    return "".join(c if c in "\n\t" or " " <= c != "\x7f" else f"^{chr(ord(c) + 64)}" if c < " " else "?"
                   for c in text)


def board_properties(board: Board) -> dict[str, str]:
    f = board.facts
    return {
        "board": board.name,
        "micropython_version": f.version,
        "banner": f.banner,
        "image_digest": f.image_digest,
        "boot_seconds": f"{f.boot_seconds:.3f}",
        "console_log": str(board.console_log),
    }


# --- reports, retries, quarantine ---------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    # JUnit takes a test case's properties from the item when its last report is written.
    props = item.user_properties
    name = _selector(item)
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
    if isinstance(exc, (InfrastructureError, ConfigError)) and not any(k == INFRA_PROPERTY for k, _ in props):
        props.append((INFRA_PROPERTY, type(exc).__name__))
    if isinstance(exc, InfrastructureError) and not isinstance(exc, (DeviceBusy, Quarantined)):
        item.stash.setdefault(_infra_key, report.longrepr)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Board tests: retry infrastructure errors on a fresh board, and stop using boards that keep
    failing. Only the final attempt is reported (with hil_retried and the first error kept)."""
    name = _selector(item)
    if name is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    state = item.config.stash[_state_key]
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
    pool = config.stash[_pool_key]
    retries, limit = config.getoption("hil_retries"), config.getoption("hil_quarantine_after")
    saved = list(item.user_properties)
    first_error = None
    attempt = 0
    while True:
        if _infra_key in item.stash:
            del item.stash[_infra_key]
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        error = item.stash.get(_infra_key, None)
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


_consoles: dict[tuple[str, str], str] = {}
_retried: dict[str, str] = {}
_quarantines: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    for collected in (_consoles, _retried, _quarantines):  # pytest.main may run twice in one process
        collected.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Runs where JUnit is written (the xdist controller too): keep each test's console text and
    what the summary lists (retried tests, quarantined boards)."""
    text = "".join(content for name, content in report.sections if name.endswith(CONSOLE_SECTION + " call"))
    if text:
        from _pytest.junitxml import mangle_test_address

        names = mangle_test_address(report.nodeid)
        _consoles[(".".join(names[:-1]), names[-1])] = text
    props = dict(report.user_properties)
    if report.when == "teardown" and RETRIED_PROPERTY in props:
        _retried[report.nodeid] = props.get(FIRST_ERROR_PROPERTY, "")
    if report.when == "teardown" and QUARANTINE_PROPERTY in props:
        _quarantines[props.get("board", "?")] = props[QUARANTINE_PROPERTY]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if _retried:
        terminalreporter.write_sep("-", "hil: retried after an infrastructure error")
        for nodeid, error in sorted(_retried.items()):
            terminalreporter.write_line(f"RETRIED {nodeid}: first attempt: {error.splitlines()[0][:200]}")
    if _quarantines:
        terminalreporter.write_sep("-", "hil: quarantined boards", red=True)
        for board_name, message in sorted(_quarantines.items()):
            terminalreporter.write_line(f"QUARANTINED {board_name}: {message.splitlines()[0][:300]}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    xmlpath = getattr(session.config.option, "xmlpath", None)
    if xmlpath and not hasattr(session.config, "workerinput") and Path(xmlpath).exists():
        from harness.report.junit import finalize_junit

        finalize_junit(Path(xmlpath), _consoles)
