"""How long each board test and each boot took last time, so that a parallel run balances its
workers by time rather than by test count (harness/pytest/scheduling.py): in the smoke suite one
micro:bit test takes a second and another 10 ms, and a board's share of the tests says little
about its share of the run.

One small JSON file, ``--hil-durations`` (default ``$HIL_DURATIONS``, else ``durations.json`` in
the harness's cache; ``off``: balance by test count and write nothing). A CI job may keep one in
its checkout, as pytest-split users keep theirs. At most MAX_TESTS tests, the least recently run
dropped first, merged under a lock by the process that sees every report (the xdist controller,
or the only process). A missing, garbled, locked or unwritable file only means count-based
balancing: it never fails or slows a run."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.cache import cache_root
from harness.errors import HarnessError
from harness.history.store import OFF  # the words --hil-history takes for "off" mean it here too

FILE = "durations.json"
ENV = "HIL_DURATIONS"
MAX_TESTS = 20000
LOCK_WAIT = 2.0  # seconds: another run writing at the same moment wins; this run's figures are skipped
DURATIONS_PATH = pytest.StashKey[Path | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("hil").addoption(
        "--hil-durations", default=os.environ.get(ENV, ""), metavar="PATH|off",
        help=f"last durations of tests and boots, to balance -n workers by time (default ${ENV} or "
        f"{FILE} in the harness cache; off: balance by test count)",
    )  # fmt: skip


def durations_path(config: pytest.Config) -> Path | None:
    """Where this run reads and writes durations; None when switched off."""
    if DURATIONS_PATH not in config.stash:
        setting = str(config.getoption("hil_durations", "") or "").strip()
        if setting.lower() in OFF:
            config.stash[DURATIONS_PATH] = None
        elif setting:
            config.stash[DURATIONS_PATH] = Path(setting).expanduser()
        else:
            try:
                config.stash[DURATIONS_PATH] = cache_root() / FILE
            except (HarnessError, OSError):
                config.stash[DURATIONS_PATH] = None  # no cache to keep them in: balance by count
    return config.stash[DURATIONS_PATH]


@dataclass
class Durations:
    tests: dict[str, float] = field(default_factory=dict)  # nodeid -> setup + call + teardown, s
    boots: dict[str, float] = field(default_factory=dict)  # board -> launch to ready, s

    def estimates(self, boards: dict[str, list[str]]) -> tuple[dict[str, float], dict[str, float]]:
        """For a plan over ``boards`` (board -> its tests): a time for every test and for every
        board's boot, in one unit. A test's own last duration, else the mean of the known ones; a
        boot's last figure, else the mean of the known ones (0.5 s if none). With no test known,
        every test and every boot counts 1 (count-based balancing: a split must save a test)."""
        nodeids = [n for ids in boards.values() for n in ids]
        known = [self.tests[n] for n in nodeids if n in self.tests]
        if not known:
            return dict.fromkeys(nodeids, 1.0), dict.fromkeys(boards, 1.0)
        mean = sum(known) / len(known)
        boots = [self.boots[b] for b in boards if b in self.boots]
        boot = sum(boots) / len(boots) if boots else 0.5
        return {n: self.tests.get(n, mean) for n in nodeids}, {b: self.boots.get(b, boot) for b in boards}


def load(path: Path | None) -> Durations:
    if path is None:
        return Durations()
    try:
        raw = json.loads(path.read_text())
        return Durations(
            tests={k: float(v[0]) for k, v in raw.get("tests", {}).items()},
            boots={k: float(v[0]) for k, v in raw.get("boots", {}).items()},
        )
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return Durations()  # none yet, or not ours to read: balance by count


def save(path: Path, tests: dict[str, float], boots: dict[str, float], now: float | None = None) -> None:
    """Merge this run's figures into ``path`` (each entry stamped with when it was measured)."""
    from filelock import FileLock, Timeout

    now = time.time() if now is None else now
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=LOCK_WAIT):
            try:
                raw = json.loads(path.read_text())
                old_tests, old_boots = dict(raw["tests"]), dict(raw["boots"])
            except (OSError, ValueError, TypeError, KeyError):
                old_tests, old_boots = {}, {}
            old_tests.update({k: [round(v, 4), now] for k, v in tests.items()})
            old_boots.update({k: [round(v, 4), now] for k, v in boots.items()})
            newest = sorted(old_tests.items(), key=lambda kv: _stamp(kv[1]), reverse=True)[:MAX_TESTS]
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".durations-")
            with os.fdopen(fd, "w") as fh:
                json.dump({"tests": dict(newest), "boots": old_boots}, fh)
            os.replace(tmp, path)
    except (OSError, Timeout, ValueError, TypeError):
        pass  # a hint for the next run, never this run's problem


def _stamp(entry) -> float:
    try:
        return float(entry[1])
    except (TypeError, ValueError, IndexError):
        return 0.0


class DurationRecorder:
    """Sums each board test's phases and notes each board's boot, then saves them at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, float] = {}
        self.boots: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        board = props.get("board")
        if not board:
            return
        self.tests[report.nodeid] = self.tests.get(report.nodeid, 0.0) + (report.duration or 0.0)
        if props.get("boot_seconds"):
            try:
                self.boots[str(board)] = float(props["boot_seconds"])
            except ValueError:
                pass

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.tests and session.exitstatus != pytest.ExitCode.INTERRUPTED:
            save(self.path, self.tests, self.boots)


def pytest_configure(config: pytest.Config) -> None:
    path = durations_path(config)
    if path is not None and not hasattr(config, "workerinput"):  # the controller sees every report
        config.pluginmanager.register(DurationRecorder(path), "hil-durations")
