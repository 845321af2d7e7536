"""Retries after infrastructure errors, quarantine, one-line harness errors: pytester sessions of
the real plugin on a pool of fake boards (harness.board.Board without a process: BoardPool's
board_factory), so the board, dut and retry machinery run as in a real run, in-process, in ms."""

from __future__ import annotations

import pytest
from junitparser import Error, Failure, JUnitXml, Properties

from harness.errors import BoardDied, ConfigError, InfrastructureError
from harness.pytest.retry import Quarantined, _quarantine_reports
from harness.report.junit import FIRST_ERROR_PROPERTY, INFRA_PROPERTY, QUARANTINE_PROPERTY, RETRIED_PROPERTY
from tests.conftest import write_target

QUIET = ("-p", "no:cacheprovider", "-p", "no:labgrid")

# A conftest for pytester sessions: every board the pool leases is a FakeBoard. Its console is a
# counter and a log file (what the dut fixture reads); `generation` counts boots in the session.
FAKE_POOL_CONFTEST = '''
import os
import shutil

import pytest

from harness.board import Board, BoardFacts
from harness.errors import BootError
from harness.lab.pool import BoardPool
from harness.pytest.state import POOL

BOOTS = []


class FakeConsole:
    received = 0
    log_dropped = 0  # bytes the capped console log dropped (harness/io/console.py)

    def note(self, text):
        pass


class FakeBoard(Board):
    def start(self):
        BOOTS.append(self.name)
        if len(BOOTS) <= int(os.environ.get("FK_FAILED_BOOTS", "0")):
            raise BootError(f"{self.name}: board did not boot (boot #{len(BOOTS)})")
        self.generation = len(BOOTS)
        self.console = FakeConsole()
        self.facts = BoardFacts(banner="MicroPython fake", version="1.25.0", boot_seconds=0.25,
                                image_digest="digest-1")
        self.fresh, self.dead = True, False
        self.say(f"boot {self.name} #{self.generation}\\n")
        return self

    def restart(self):
        self.start()

    def alive(self):
        return not self.dead

    def soft_reset(self):
        self.say("\\x04soft reboot\\r\\n")

    def stop(self):
        self.console = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def say(self, text):
        with open(self.console_log, "a") as fh:
            fh.write(text)
        self.console.received += len(text)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.stash[POOL] = BoardPool(config.stash[POOL].log_dir, board_factory=FakeBoard)


def attempt(dut, what):
    """Record one run of a test body (attempts.txt in the pytester directory)."""
    with open("attempts.txt", "a") as fh:
        fh.write(f"{what} {dut.generation}\\n")
'''


@pytest.fixture
def fake_run(pytester, monkeypatch):
    """Run a test module on fake board ``fk``; returns (result, junit cases by name, attempts)."""
    targets = pytester.mkdir("targets")
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    monkeypatch.delenv("HIL_BOARDS", raising=False)
    write_target(targets, "fk", '[image]\nbuilder = "none"\n[launch]\nkind = "process"\ncommand = ["true"]\n')
    pytester.makeconftest(FAKE_POOL_CONFTEST)

    def run(source: str, *args: str):
        pytester.makepyfile(test_r="from conftest import attempt\nfrom harness.errors import BoardDied\n" + source)
        junit = pytester.path / "junit.xml"
        result = pytester.runpytest(*QUIET, "--board=fk", f"--junitxml={junit}", "--hil-logs=logs", "-rA", *args)
        cases = {case.name: case for suite in JUnitXml.fromfile(str(junit)) for case in suite}
        attempts_file = pytester.path / "attempts.txt"
        attempts = attempts_file.read_text().splitlines() if attempts_file.exists() else []
        return result, cases, attempts

    return run


def props(case) -> dict[str, str]:
    found = case.child(Properties)
    return {p.name: p.value for p in found} if found is not None else {}


FLAKY = """
def test_flaky(dut):
    attempt(dut, "flaky")
    if dut.generation == 1:
        dut.dead = True
        raise BoardDied("fk: board went away")
"""


def test_infrastructure_error_is_retried_once_on_a_fresh_board(fake_run):
    result, cases, attempts = fake_run(FLAKY)
    result.assert_outcomes(passed=1)
    assert attempts == ["flaky 1", "flaky 2"]  # the second attempt ran on a newly booted board
    p = props(cases["test_flaky[fk]"])
    assert p[RETRIED_PROPERTY] == "1" and p[FIRST_ERROR_PROPERTY] == "BoardDied: fk: board went away"
    assert p["board"] == "fk" and p["micropython_version"] == "1.25.0" and p["image_digest"] == "digest-1"
    assert list(cases["test_flaky[fk]"].result) == []  # passed
    retried = "RETRIED test_r.py::test_flaky[[]fk[]]: first attempt: BoardDied: fk: board went away"
    result.stdout.fnmatch_lines(["*hil: retried after an infrastructure error*", retried])
    # the console text of the test (both attempts and the retry note) is the case's system-out
    out = cases["test_flaky[fk]"].system_out
    assert "--- hil: BoardDied: fk: board went away" in out and "retry 1 of 1 on a fresh board" in out
    assert "boot fk" not in out  # the boot happens before the test's own console text starts


def test_without_retries_an_infrastructure_error_is_one_line_junit_error(fake_run):
    result, cases, attempts = fake_run(FLAKY, "--hil-retries=0")
    result.assert_outcomes(errors=1)  # pytest's terminal line agrees with JUnit: an error, not a failure
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert attempts == ["flaky 1"]
    case = cases["test_flaky[fk]"]
    (error,) = case.result
    assert isinstance(error, Error)  # finalize_junit: an infrastructure failure is an <error>, not <failure>
    assert error.message == "BoardDied: fk: board went away" and error.type == "BoardDied"
    assert props(case)[INFRA_PROPERTY] == "BoardDied" and RETRIED_PROPERTY not in props(case)
    assert "Traceback" not in result.stdout.str() and "raise BoardDied" not in result.stdout.str()
    result.stdout.fnmatch_lines(["ERROR test_r.py::test_flaky[[]fk[]] - BoardDied: fk: board went away",
                                 "*[ =]1 error in *"])  # fmt: skip
    assert "FAILED" not in result.stdout.str() and " failed" not in result.stdout.str()


def test_a_test_failure_is_never_retried(fake_run):
    result, cases, attempts = fake_run("""
def test_wrong(dut):
    attempt(dut, "wrong")
    assert dut.generation == 99
""", "--hil-retries=3")  # fmt: skip
    result.assert_outcomes(failed=1)
    assert attempts == ["wrong 1"]
    case = cases["test_wrong[fk]"]
    assert isinstance(next(iter(case.result)), Failure)
    assert INFRA_PROPERTY not in props(case) and RETRIED_PROPERTY not in props(case)
    assert "hil: retried" not in result.stdout.str()


def test_a_config_error_is_one_line_and_not_retried(fake_run):
    result, cases, attempts = fake_run("""
from harness.errors import ConfigError

def test_config(dut):
    attempt(dut, "config")
    raise ConfigError("targets/fk.toml: [launch] port: bad")
""")  # fmt: skip
    assert attempts == ["config 1"]
    (error,) = cases["test_config[fk]"].result
    assert isinstance(error, Error) and error.message == "ConfigError: targets/fk.toml: [launch] port: bad"
    result.assert_outcomes(errors=1)
    assert props(cases["test_config[fk]"])[INFRA_PROPERTY] == "ConfigError"


def test_retries_give_up_after_the_limit(fake_run):
    result, cases, attempts = fake_run("""
def test_dies(dut):
    attempt(dut, "dies")
    raise BoardDied(f"fk: gone #{dut.generation}")
""", "--hil-retries=2", "--hil-quarantine-after=0")  # fmt: skip
    result.assert_outcomes(errors=1)
    assert attempts == ["dies 1", "dies 2", "dies 3"]
    case = cases["test_dies[fk]"]
    (error,) = case.result
    assert error.message == "BoardDied: fk: gone #3"  # the last attempt is reported...
    assert props(case)[FIRST_ERROR_PROPERTY] == "BoardDied: fk: gone #1"  # ...and the first kept
    assert props(case)[RETRIED_PROPERTY] == "2"


def test_a_board_is_quarantined_after_n_infrastructure_errors(fake_run):
    result, cases, attempts = fake_run("""
def test_a(dut):
    attempt(dut, "a")
    raise BoardDied("fk: gone a")

def test_b(dut):
    attempt(dut, "b")
    raise BoardDied("fk: gone b")

def test_c(dut):
    attempt(dut, "c")

import pytest

@pytest.mark.skip(reason="not today")
def test_d(dut):
    attempt(dut, "d")

def test_no_board():
    pass
""", "--hil-retries=0", "--hil-quarantine-after=2")  # fmt: skip
    result.assert_outcomes(passed=1, errors=3, skipped=1)  # a and b (call phase) and c (quarantined)
    assert attempts == ["a 1", "b 2"]  # test_c never ran: the board was not booted again for it
    message = "board fk quarantined after 2 infrastructure errors (last: BoardDied: fk: gone b)"
    assert QUARANTINE_PROPERTY not in props(cases["test_a[fk]"])
    assert props(cases["test_b[fk]"])[QUARANTINE_PROPERTY] == message
    c = cases["test_c[fk]"]
    (error,) = c.result
    assert isinstance(error, Error) and error.message == f'failed on setup with "Quarantined: {message}"'
    assert props(c)[QUARANTINE_PROPERTY] == message and props(c)["board"] == "fk"
    assert next(iter(cases["test_d[fk]"].result)).message == "not today"  # a skip stays a skip
    result.stdout.fnmatch_lines(["*hil: quarantined boards*", f"QUARANTINED fk: {message}"])


def test_console_text_of_each_test_goes_into_its_junit_case(fake_run):
    result, cases, _ = fake_run("""
def test_one(dut):
    dut.say("one says \\x01hi\\r\\n")

def test_two(dut):
    pass

def test_three(board):
    board.say("not via dut")
""")  # fmt: skip
    result.assert_outcomes(passed=3)
    assert cases["test_one[fk]"].system_out.endswith("one says ^Ahi\n")  # control bytes shown, \\r dropped
    assert "boot fk" not in cases["test_one[fk]"].system_out  # the boot is before the test's text starts
    assert not cases["test_two[fk]"].system_out  # the soft reset before it is not the test's output
    assert not cases["test_three[fk]"].system_out  # only dut attaches console text
    assert props(cases["test_three[fk]"])["boot_seconds"] == "0.250"


def test_quarantined_is_an_infrastructure_error():
    assert issubclass(Quarantined, InfrastructureError)
    assert not issubclass(Quarantined, ConfigError)


def test_quarantine_reports_are_a_setup_error_and_a_teardown_with_the_property(pytester, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))
    monkeypatch.setenv("HIL_BOARDS", "fk")
    pytester.makepyfile(test_q="def test_x(board):\n    pass\n")
    (item,), _ = pytester.inline_genitems(*QUIET)
    setup, teardown = _quarantine_reports(item, "board fk quarantined after 3 infrastructure errors")
    assert (setup.when, setup.outcome) == ("setup", "failed")
    assert setup.longrepr == "Quarantined: board fk quarantined after 3 infrastructure errors"
    assert (QUARANTINE_PROPERTY, "board fk quarantined after 3 infrastructure errors") in setup.user_properties
    assert (teardown.when, teardown.outcome) == ("teardown", "passed")
    assert dict(teardown.user_properties) == {
        "board": "fk", INFRA_PROPERTY: "Quarantined",
        QUARANTINE_PROPERTY: "board fk quarantined after 3 infrastructure errors",
    }  # fmt: skip


def test_board_died_is_retriable():
    assert issubclass(BoardDied, InfrastructureError)


def test_a_busy_device_is_an_infrastructure_error_but_not_retried(fake_run):
    """Another process holds the device: a fresh board cannot help (the pool already waited)."""
    _, cases, attempts = fake_run("""
from harness.lab.pool import DeviceBusy

def test_busy(dut):
    attempt(dut, "busy")
    raise DeviceBusy("device /dev/ttyACM0 (board fk) is held by pid 1")
""", "--hil-retries=2")  # fmt: skip
    assert attempts == ["busy 1"]
    case = cases["test_busy[fk]"]
    assert props(case)[INFRA_PROPERTY] == "DeviceBusy" and RETRIED_PROPERTY not in props(case)
    assert next(iter(case.result)).message == "DeviceBusy: device /dev/ttyACM0 (board fk) is held by pid 1"


def test_a_board_that_did_not_boot_is_booted_again_for_the_retry(fake_run, monkeypatch):
    """The failed session-scoped board fixture must not re-raise its cached error on the retry."""
    monkeypatch.setenv("FK_FAILED_BOOTS", "1")
    result, cases, attempts = fake_run("""
def test_first(dut):
    attempt(dut, "first")

def test_second(dut):
    attempt(dut, "second")
""")  # fmt: skip
    result.assert_outcomes(passed=2)
    assert attempts == ["first 2", "second 2"]  # boot #1 failed; one board (boot #2) served both tests
    p = props(cases["test_first[fk]"])
    assert p[RETRIED_PROPERTY] == "1" and p[FIRST_ERROR_PROPERTY] == "BootError: fk: board did not boot (boot #1)"
    assert RETRIED_PROPERTY not in props(cases["test_second[fk]"])


def test_a_board_that_never_boots_is_quarantined_without_more_boots(fake_run, monkeypatch):
    monkeypatch.setenv("FK_FAILED_BOOTS", "100")
    result, cases, attempts = fake_run("""
def test_1(dut):
    attempt(dut, "1")

def test_2(dut):
    attempt(dut, "2")

def test_3(dut):
    attempt(dut, "3")
""", "--hil-retries=1", "--hil-quarantine-after=2")  # fmt: skip
    result.assert_outcomes(errors=3)
    assert attempts == []
    assert cases["test_1[fk]"].result[0].message.endswith('"BootError: fk: board did not boot (boot #2)"')
    last = "BootError: fk: board did not boot (boot #2)"
    quarantined = f"board fk quarantined after 2 infrastructure errors (last: {last})"
    assert props(cases["test_2[fk]"])[QUARANTINE_PROPERTY] == quarantined
    assert props(cases["test_3[fk]"])[QUARANTINE_PROPERTY] == quarantined
    result.stdout.fnmatch_lines([f"QUARANTINED fk: {quarantined}"])
