"""The host side of run-multitests.py's protocol (suites/micropython_multi/mm_protocol.py) against
scripted instances, then the real template under the real unix port and CPython (two processes
relaying through the host, no board)."""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

SUITE = REPO / "suites" / "micropython_multi"


@pytest.fixture(scope="module")
def mm():
    sys.path.insert(0, str(SUITE))
    try:
        names = ("mm_protocol", "mm_process", "mm_truth")
        yield SimpleNamespace(**{n.removeprefix("mm_"): importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(SUITE))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Scripted:
    """An instance that plays a list of steps once started: a line to print, ("wait", text) to block
    until the host writes that text, ("silent",) to print nothing ever, ("err", text) to end with
    a traceback. Empty reads advance the shared clock by the poll time."""

    def __init__(self, steps, clock: Clock, log: list) -> None:
        self.steps, self.clock, self.log = list(steps), clock, log
        self.scripts: list[bytes] = []
        self.received = b""
        self.started = self.finished = self.stopped = False
        self.reboot_asked: list[float] = []

    def start(self, script: bytes) -> None:
        self.scripts.append(script)
        self.log.append(("start", self))
        self.started, self.finished = True, False

    def readline(self, timeout: float):
        if not self.steps:
            self.finished = True
            return None, None
        step = self.steps[0]
        if isinstance(step, tuple) and step[0] == "wait":
            if step[1].encode() + b"\r\n" in self.received:
                self.steps.pop(0)
                return self.readline(timeout)
            self.clock.t += timeout
            return None, None
        if isinstance(step, tuple) and step[0] == "silent":
            self.clock.t += timeout
            return None, None
        self.steps.pop(0)
        if isinstance(step, tuple) and step[0] == "err":
            self.finished = True
            return "", step[1]
        return step, None

    def write(self, data: bytes) -> None:
        self.received += data

    def is_finished(self) -> bool:
        return self.finished

    def stop(self) -> None:
        self.stopped = True

    def wait_reboot(self, delay_ms: float) -> bool:
        self.reboot_asked.append(delay_ms)
        return False


def _pair(steps0, steps1):
    clock, log = Clock(), []
    return clock, log, [Scripted(steps0, clock, log), Scripted(steps1, clock, log)]


SOURCE = b"def instance0():\n    pass\n\ndef instance1():\n    pass\n"


def test_instance_count_is_the_highest_instance_plus_one(mm):
    assert mm.protocol.instance_count("def instance0():\n  pass\ndef instance1():\n") == 2
    assert mm.protocol.instance_count("def instance2():\n") == 3
    assert mm.protocol.instance_count("  def instance5():\n# def instance9():\n") == 0  # at line start only


def test_script_is_the_file_then_the_template_with_globals_and_entry(mm):
    s = mm.protocol.script(b"X = 1", "HOST_IP = '10.0.0.5'\nIP = '1.2.3.4'\n", 1).decode()
    assert s.startswith("X = 1\n\nimport sys\nclass multitest:")
    assert "HOST_IP = '10.0.0.5'\nIP = '1.2.3.4'\n" in s
    assert s.rstrip().endswith("instance1()\nmultitest.flush()")
    assert 'print("SET {} = {!r}".format(g, gs[g]))' in s  # the template's doubled braces undone


def test_host_ip_only_for_tests_that_ask_for_the_network_address(mm):
    assert mm.protocol.host_ip_global(b"multitest.get_network_ip()", "1.2.3.4") == "HOST_IP = '1.2.3.4'\n"
    assert mm.protocol.host_ip_global(b"print(1)", "1.2.3.4") == ""


def test_instances_start_in_order_and_set_lines_become_the_next_ones_globals(mm):
    clock, log, (a, b) = _pair(["SET IP = '192.168.77.10'", "hello", "NEXT", "done"], ["NEXT", "got it"])
    out = mm.protocol.run_test(SOURCE + b"multitest.get_network_ip", [a, b], ["ip-a", "ip-b"], clock=clock)
    assert [who for what, who in log if what == "start"] == [a, b]
    assert b"HOST_IP = 'ip-a'\n" in a.scripts[0] and b"\nIP = " not in a.scripts[0]
    assert b"HOST_IP = 'ip-b'\nIP = '192.168.77.10'\n" in b.scripts[0]  # its own HOST_IP, a's SET
    assert out.output == "--- instance0 ---\nhello\ndone\n--- instance1 ---\ngot it\n"
    assert not out.error and not out.skip
    assert a.stopped and b.stopped


def test_broadcast_goes_to_the_other_instances_and_not_into_the_output(mm):
    clock, _log, (a, b) = _pair(["NEXT", "BROADCAST server ready", "served"],
                               ["NEXT", ("wait", "BROADCAST server ready"), "client done"])  # fmt: skip
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock)
    assert b.received == b"BROADCAST server ready\r\n" and a.received == b""
    assert out.output == "--- instance0 ---\nserved\n--- instance1 ---\nclient done\n"
    assert not out.error


def test_metrics_are_collected_and_ignored_port_noise_is_dropped(mm):
    clock, _log, (a, b) = _pair(["NEXT", "OUTPUT_METRIC 12 kB/s", " ets_task(4020f4b0)", "x"], ["NEXT"])
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock)
    assert out.metrics == ["12 kB/s"]
    assert out.output == "--- instance0 ---\nx\n--- instance1 ---\n\n"


def test_skip_while_starting_skips_the_test_and_starts_no_more_instances(mm):
    clock, _log, (a, b) = _pair(["SKIP"], ["NEXT"])
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock)
    assert out.skip and not b.started
    clock, _log, (a, b) = _pair(["NEXT"], ["SKIP"])  # the second instance lacks a feature
    assert mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock).skip


def test_a_silent_instance_gets_timeout_and_the_run_ends_with_an_error(mm):
    clock, _log, (a, b) = _pair(["NEXT", ("silent",)], ["NEXT", "fine"])
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], read_timeout=10, clock=clock)
    assert out.error and out.output.startswith("--- instance0 ---\nTIMEOUT\n")
    assert clock.t >= 10
    clock, _log, (a, b) = _pair([("silent",)], ["NEXT"])  # silent before NEXT: b never starts
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], read_timeout=10, clock=clock)
    assert out.error and not b.started and out.output == "--- instance0 ---\nTIMEOUT\n--- instance1 ---\n\n"


def test_a_traceback_is_output_and_an_error(mm):
    clock, _log, (a, b) = _pair(["NEXT", ("err", "Traceback ...\nOSError: 9\n")], ["NEXT", ("silent",)])
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock)
    assert out.error and "OSError: 9" in out.output
    assert b.stopped  # the still-running instance is stopped


def test_total_timeout_bounds_a_run_that_never_goes_quiet(mm):
    chatter = ["NEXT"] + ["tick"] * 10_000
    clock, _log, (a, b) = _pair(chatter, ["NEXT", ("silent",)])
    original = a.readline

    def slow(timeout):
        clock.t += 0.01
        return original(timeout)

    a.readline = slow
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], read_timeout=1000, total_timeout=5, clock=clock)
    assert out.error and out.output.count("TIMEOUT") == 2


def test_expect_reboot_that_cannot_be_served_stays_in_the_output(mm):
    clock, _log, (a, b) = _pair(["NEXT", "WAIT_FOR_REBOOT instance0_2 500"], ["NEXT"])
    out = mm.protocol.run_test(SOURCE, [a, b], ["a", "b"], clock=clock)
    assert a.reboot_asked == [500.0]
    assert "WAIT_FOR_REBOOT instance0_2 500" in out.output


def test_the_banner_run_multitests_waits_for_after_a_reboot(mm):
    assert mm.protocol.reboot_banner("MicroPython v1.25.0 on 2025-05-04; mps2-an385 with Cortex-M3")
    assert not mm.protocol.reboot_banner("MicroPython 9458e3a23f on 2026-07-05; linux [GCC 14.2.1] version")


def test_exp_file_is_the_expected_output(mm, tmp_path):
    test = tmp_path / "t.py"
    test.write_text("def instance0():\n    print(1)\n")
    (tmp_path / "t.py.exp").write_text("--- instance0 ---\n1\n")
    assert mm.truth.expected_output(test) == "--- instance0 ---\n1\n"


# --- the real template, run by real interpreters (two processes, the host relaying) ------------
RELAY_TEST = textwrap.dedent("""
    def instance0():
        multitest.globals(TOKEN="t-42", ADDR=multitest.get_network_ip())
        multitest.next()
        multitest.broadcast("go")
        print("server", 1)

    def instance1():
        multitest.next()
        multitest.wait("go")
        print("client", TOKEN, ADDR)
""")
RELAY_EXPECTED = "--- instance0 ---\nserver 1\n--- instance1 ---\nclient t-42 10.9.8.7\n"


def _interpreters():
    unix = shutil.which("micropython", path=str(Path(sys.executable).parent))
    return [pytest.param([sys.executable], id="cpython"),
            pytest.param([unix] if unix else None, id="micropython-unix")]  # fmt: skip


@pytest.mark.spawns
@pytest.mark.parametrize("argv", _interpreters())
def test_the_template_relays_between_two_real_interpreters(mm, tmp_path, argv):
    if argv is None:
        pytest.skip("the unix port `micropython` is not in the venv")
    (tmp_path / "relay.py").write_text(RELAY_TEST)
    instances = [mm.process.ProcessInstance(argv, tmp_path) for _ in range(2)]
    out = mm.protocol.run_test(RELAY_TEST.encode(), instances, ["10.9.8.7", "10.9.8.8"], read_timeout=30)
    assert (out.output, out.error, out.skip) == (RELAY_EXPECTED, False, False)


@pytest.mark.spawns
def test_a_wrong_output_differs_from_the_expected_text(mm, tmp_path):
    """The broken-twin check of the verdict: an instance that prints something else fails."""
    broken = RELAY_TEST.replace('print("client", TOKEN, ADDR)', 'print("client", TOKEN[:-1], ADDR)')
    instances = [mm.process.ProcessInstance([sys.executable], tmp_path) for _ in range(2)]
    out = mm.protocol.run_test(broken.encode(), instances, ["10.9.8.7", "10.9.8.8"], read_timeout=30)
    assert out.output != RELAY_EXPECTED and "client t-4 10.9.8.7" in out.output
