"""pytest plugin (entry point ``hil``): boards as fixtures, capability skips, JUnit that tells
infrastructure errors from test failures and carries each test's console log.

    pytest --board mps2_an385 --board native suites/smoke

Tests that use the ``board`` (session-scoped, booted once per board) or ``dut`` (the same board,
soft-reset before each test) fixture run once per selected board."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.board import Board
from harness.errors import ConfigError, HarnessError, InfrastructureError
from harness.targets import BoardSpec, find_board, load_all, targets_dir

INFRA_PROPERTY = "hil_infrastructure_error"
CONSOLE_SECTION = "hil console"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop boards")
    group.addoption("--board", action="append", default=[], help="board to run on (repeatable); default: "
                    "$HIL_BOARDS or every target with default = true")
    group.addoption("--targets", default=None, help="directory of target files (default: ./targets)")
    group.addoption("--hil-logs", default="hil-out/logs", help="where console logs go (default: hil-out/logs)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*caps): needs board capabilities (net, tls, can, fs, ...)")
    config.addinivalue_line("markers", "boards(*names): run only on these boards")
    if config.getoption("targets"):
        os.environ["HIL_TARGETS"] = str(Path(config.getoption("targets")).resolve())
    config.stash[_pool_key] = BoardPool(Path(config.getoption("hil_logs")))


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, at collection, tests whose board lacks a required capability: no boot wasted."""
    specs: dict[str, BoardSpec | None] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("board") if callspec else None
        if name is None:
            continue
        if name not in specs:
            try:
                specs[name] = find_board(name)
            except ConfigError:
                specs[name] = None  # the board fixture reports it as an error on each test
        spec = specs[name]
        if spec is None:
            continue
        only = item.get_closest_marker("boards")
        if only and name not in only.args:
            item.add_marker(pytest.mark.skip(reason=f"only for boards {', '.join(only.args)}"))
        for marker in item.iter_markers("requires"):
            missing = [cap for cap in marker.args if not spec.capabilities.has(cap)]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"board {name} lacks capability: {', '.join(missing)}"))


class BoardPool:
    """Boards booted in this process, by name; a board that failed to boot stays failed for the
    session (each of its tests reports the same infrastructure error instead of re-booting)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.boards: dict[str, Board] = {}
        self.failures: dict[str, HarnessError] = {}

    def get(self, name: str) -> Board:
        if name in self.failures:
            raise self.failures[name]
        if name not in self.boards:
            try:
                board = Board(find_board(name), log_dir=self.log_dir)
                board.start()
            except HarnessError as exc:
                self.failures[name] = exc
                raise
            self.boards[name] = board
        return self.boards[name]

    def release(self, name: str) -> None:
        board = self.boards.pop(name, None)
        if board:
            board.stop()

    def stop_all(self) -> None:
        for name in list(self.boards):
            self.release(name)


_pool_key = pytest.StashKey[BoardPool]()


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
    yield board
    if board.console and board.console.received > start:
        with open(board.console_log, "rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", "replace").replace("\r", "")
        item.add_report_section("call", CONSOLE_SECTION, printable(text[-20000:]))


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    # JUnit takes a test case's properties from the item when its last report is written.
    props = item.user_properties
    callspec = getattr(item, "callspec", None)
    if callspec and "board" in callspec.params and not any(k == "board" for k, _ in props):
        running = getattr(item, "funcargs", {}).get("board")
        if isinstance(running, Board):
            props.extend(board_properties(running).items())
        else:
            props.append(("board", callspec.params["board"]))
    if call.excinfo is None or not call.excinfo.errisinstance(HarnessError):
        return
    exc = call.excinfo.value
    # A harness error is one clear line (plus console tail), never a traceback of our internals.
    report.longrepr = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (InfrastructureError, ConfigError)) and not any(k == INFRA_PROPERTY for k, _ in props):
        props.append((INFRA_PROPERTY, type(exc).__name__))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Runs where JUnit is written (the xdist controller too): keep each test's console text."""
    text = "".join(content for name, content in report.sections if name.endswith(CONSOLE_SECTION + " call"))
    if text:
        from _pytest.junitxml import mangle_test_address

        names = mangle_test_address(report.nodeid)
        _consoles[(".".join(names[:-1]), names[-1])] = text


_consoles: dict[tuple[str, str], str] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    xmlpath = getattr(session.config.option, "xmlpath", None)
    if xmlpath and not hasattr(session.config, "workerinput") and Path(xmlpath).exists():
        from harness.report import finalize_junit

        finalize_junit(Path(xmlpath), _consoles)
