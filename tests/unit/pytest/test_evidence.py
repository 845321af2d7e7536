"""The evidence timeline in a run: pytester sessions of the real plugin on fake boards (the fake
pool of test_retry.py), the test body standing in for the console by writing the board's journal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from junitparser import JUnitXml, Properties

from harness.pytest.evidence import capture_clock
from harness.report.timeline import TIMELINE_HEADER, split
from tests.conftest import write_target
from tests.unit.pytest.test_retry import FAKE_POOL_CONFTEST, QUIET

TESTS = '''
from harness.report.journal import BOARD_TO_HOST, HOST_TO_BOARD


def chat(dut):
    dut.journal.add(HOST_TO_BOARD, b"\\x05A\\x01print(42)\\x04")
    dut.journal.add(BOARD_TO_HOST, b"OK42\\r\\n\\x04\\x04>")


def test_fails(dut):
    chat(dut)
    assert False, "wrong answer"


def test_passes(dut):
    chat(dut)


def test_errors(dut):
    chat(dut)
    raise RuntimeError("the host side broke")
'''


@pytest.fixture
def run(pytester, monkeypatch):
    targets = pytester.mkdir("targets")
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    monkeypatch.delenv("HIL_BOARDS", raising=False)
    monkeypatch.delenv("HIL_TIMELINE", raising=False)
    write_target(targets, "fk", '[image]\nbuilder = "none"\n[launch]\nkind = "process"\ncommand = ["true"]\n')
    pytester.makeconftest(FAKE_POOL_CONFTEST)
    pytester.makepyfile(test_e=TESTS)

    def go(*args: str) -> dict[str, str]:
        junit = pytester.path / "junit.xml"
        pytester.runpytest(*QUIET, "--board=fk", f"--junitxml={junit}", "--hil-logs=logs", *args)
        return {case.name.split("[")[0]: case.system_out or "" for suite in JUnitXml.fromfile(str(junit))
                for case in suite}  # fmt: skip

    return go


def test_a_failing_and_an_erroring_test_get_a_timeline_a_passing_one_does_not(run):
    outs = run()
    for name in ("test_fails", "test_errors"):
        _console, timeline = split(outs[name])
        lines = timeline.splitlines()
        assert lines[0].startswith("t+")
        assert "host>board \\x05A\\x01print(42)\\x04" in timeline
        assert "board>host OK42" in timeline and "board>host \\x04\\x04>" in timeline
        times = [float(line.split()[0][2:]) for line in lines]
        assert times == sorted(times)
    assert split(outs["test_fails"])[1].splitlines()[0].endswith("harness    lease fk: board fk")  # the board's first
    assert "harness    lease fk" not in outs["test_errors"]  # the first test has the lease, the last the release
    assert split(outs["test_errors"])[1].splitlines()[-1].endswith("harness    release fk")
    assert TIMELINE_HEADER not in outs["test_passes"]


def test_all_gives_every_board_test_a_timeline_and_off_none(run):
    outs = run("--hil-timeline", "all")
    assert all(TIMELINE_HEADER in out for out in outs.values())
    outs = run("--hil-timeline", "off")
    assert not any(TIMELINE_HEADER in out for out in outs.values())


def test_the_environment_sets_the_default(run, monkeypatch):
    monkeypatch.setenv("HIL_TIMELINE", "all")
    assert TIMELINE_HEADER in run()["test_passes"]


def test_a_bad_environment_value_is_one_line(pytester, monkeypatch):
    monkeypatch.setenv("HIL_TIMELINE", "yes")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--co")
    assert "HIL_TIMELINE='yes': use one of failed, all, off" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_a_retried_test_has_both_attempts_and_the_retry_on_its_timeline(pytester, run):
    pytester.makepyfile(test_e='''
from harness.errors import BoardDied
from harness.report.journal import BOARD_TO_HOST


def test_flaky_then_wrong(dut):
    dut.journal.add(BOARD_TO_HOST, f"attempt on boot {dut.generation}\\n".encode())
    if dut.generation == 1:
        dut.dead = True
        raise BoardDied("fk: board went away")
    assert False
''')
    out = run()["test_flaky_then_wrong"]
    _console, timeline = split(out)
    assert "board>host attempt on boot 1" in timeline and "board>host attempt on boot 2" in timeline
    assert "harness    retry 1 of 1 on a fresh board after: BoardDied: fk: board went away" in timeline
    assert timeline.index("boot 1") < timeline.index("retry 1 of 1") < timeline.index("boot 2")


def test_can_frames_of_a_test_are_written_with_pythons_can_logger(pytester, run):
    pytester.makepyfile(test_e='''
import can
from harness.net.canlog import stamped
from harness.report.journal import CAN


def test_frames(dut):
    msg = can.Message(arbitration_id=0x77, data=b"\\x01", is_extended_id=False)
    dut.journal.add(CAN, stamped(msg, rx=False, t=dut.journal.clock()))


def test_no_frames(dut):
    pass
''')
    junit = pytester.path / "junit.xml"
    pytester.runpytest(*QUIET, "--board=fk", f"--junitxml={junit}", "--hil-logs=logs")
    props = {}
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            found = case.child(Properties)
            props[case.name] = {p.name: p.value for p in found} if found is not None else {}
    path = props["test_frames[fk]"]["can_log"]
    assert path.endswith(".asc") and "can_log" not in props["test_no_frames[fk]"]
    import can

    (frame,) = list(can.LogReader(path))
    assert frame.arbitration_id == 0x77 and bytes(frame.data) == b"\x01" and not frame.is_rx


def test_capture_clock_maps_a_cold_boards_pcap_clock_to_the_hosts():
    launcher = SimpleNamespace(restored=False)
    snapshot = SimpleNamespace(enabled=False)
    board = SimpleNamespace(launcher=launcher, console_opened_at=1000.75, spec=SimpleNamespace(snapshot=snapshot))
    # QEMU stamps whole second of the dump's start (1010) + virtual seconds since the machine ran
    shift = capture_clock(board, dump_started=1010.4)
    assert 1010 + 9.5 + shift == pytest.approx(1000.75 + 9.5)
    snapshot.enabled = True  # paused while its snapshot was saved: the virtual clock lags, by how much unknown
    assert capture_clock(board, dump_started=1010.4) is None
    snapshot.enabled, launcher.restored = False, True  # a restored machine carries its saved clock on
    assert capture_clock(board, dump_started=1010.4) is None
    assert capture_clock(SimpleNamespace(launcher=None, console_opened_at=1.0), dump_started=2.0) is None
