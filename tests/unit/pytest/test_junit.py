"""The plugin's RunReport: console text for the JUnit file, the retried/quarantined summary, and
finalize_junit at the end of the run (on the controller only, only when a JUnit file was written)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.pytest import junit as plugin_junit
from harness.pytest.junit import RunReport
from harness.pytest.state import CONSOLE_SECTION
from harness.report.junit import FIRST_ERROR_PROPERTY, QUARANTINE_PROPERTY, RETRIED_PROPERTY

NODE = "suites/smoke/test_smoke.py::test_hello[native]"


def report(when: str = "call", nodeid: str = NODE, sections=(), props=()) -> pytest.TestReport:
    return pytest.TestReport(nodeid, ("suites/smoke/test_smoke.py", 1, "test_hello[native]"), {}, "passed", None,
                             when, sections=list(sections), user_properties=list(props))  # fmt: skip


def test_console_sections_of_a_test_are_kept_under_its_junit_name():
    run = RunReport()
    run.pytest_runtest_logreport(report("setup"))
    run.pytest_runtest_logreport(report(sections=[
        (f"Captured {CONSOLE_SECTION} call", "boot text\n"),
        ("Captured stdout call", "host print\n"),  # pytest's own capture: not the board's console
    ]))  # fmt: skip
    assert run.consoles == {("suites.smoke.test_smoke", "test_hello[native]"): "boot text\n"}


def test_console_sections_of_a_retried_test_are_joined():
    run = RunReport()
    run.pytest_runtest_logreport(report(sections=[(f"Captured {CONSOLE_SECTION} call", "first\n"),
                                                  (f"Captured {CONSOLE_SECTION} call", "--- hil: retry 1\n")]))
    assert list(run.consoles.values()) == ["first\n--- hil: retry 1\n"]


def test_a_test_in_a_class_keeps_its_class_in_the_junit_classname():
    run = RunReport()
    run.pytest_runtest_logreport(report(nodeid="suites/tls/test_tls.py::TestClient::test_x[qemu]",
                                        sections=[(f"Captured {CONSOLE_SECTION} call", "x")]))  # fmt: skip
    assert list(run.consoles) == [("suites.tls.test_tls.TestClient", "test_x[qemu]")]


def test_no_console_text_no_entry():
    run = RunReport()
    run.pytest_runtest_logreport(report(sections=[("Captured stderr call", "x")]))
    assert run.consoles == {}


def test_retried_and_quarantined_come_from_teardown_reports():
    run = RunReport()
    retried = [(RETRIED_PROPERTY, "1"), (FIRST_ERROR_PROPERTY, "BoardDied: gone\nmore")]
    run.pytest_runtest_logreport(report("call", props=retried))  # only the last report of a test counts
    assert run.retried == {}
    run.pytest_runtest_logreport(report("teardown", props=[("board", "native"), *retried]))
    assert run.retried == {NODE: "BoardDied: gone\nmore"}
    quarantine = [("board", "microbit"), (QUARANTINE_PROPERTY, "board microbit quarantined after 3 ...")]
    run.pytest_runtest_logreport(report("setup", nodeid="t.py::a[microbit]", props=quarantine))
    assert run.quarantines == {}
    run.pytest_runtest_logreport(report("teardown", nodeid="t.py::a[microbit]", props=quarantine))
    run.pytest_runtest_logreport(report("teardown", nodeid="t.py::b[microbit]", props=quarantine))
    assert run.quarantines == {"microbit": "board microbit quarantined after 3 ..."}


def test_quarantine_without_a_board_property_is_still_listed():
    run = RunReport()
    run.pytest_runtest_logreport(report("teardown", props=[(QUARANTINE_PROPERTY, "q")]))
    assert run.quarantines == {"?": "q"}


class Terminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str, **markup) -> None:
        self.lines.append(f"{sep * 3} {title}")

    def write_line(self, line: str, **markup) -> None:
        self.lines.append(line)


def test_terminal_summary_lists_retried_tests_and_quarantined_boards():
    run = RunReport(retried={"b.py::t[x]": "BoardDied: x gone\ntraceback", "a.py::t[x]": "BootError: " + "y" * 300},
                    quarantines={"x": "board x quarantined after 3 infrastructure errors\nmore"})  # fmt: skip
    term = Terminal()
    run.pytest_terminal_summary(term, 0, SimpleNamespace())
    assert term.lines == [
        "--- hil: retried after an infrastructure error",
        "RETRIED a.py::t[x]: first attempt: BootError: " + "y" * (200 - len("BootError: ")),  # first 200 chars
        "RETRIED b.py::t[x]: first attempt: BoardDied: x gone",  # sorted, first line only
        "--- hil: quarantined boards",
        "QUARANTINED x: board x quarantined after 3 infrastructure errors",
    ]


def test_terminal_summary_is_silent_when_nothing_happened_or_on_a_worker():
    term = Terminal()
    RunReport().pytest_terminal_summary(term, 0, SimpleNamespace())
    RunReport(retried={"a": "e"}, quarantines={"b": "q"}).pytest_terminal_summary(
        term, 0, SimpleNamespace(workerinput={"workerid": "gw0"}))  # fmt: skip
    assert term.lines == []


@pytest.fixture
def finalized(monkeypatch):
    calls = []
    monkeypatch.setattr(plugin_junit, "finalize_junit", lambda path, consoles: calls.append((path, consoles)))
    return calls


def session(xmlpath, worker: bool = False) -> SimpleNamespace:
    config = SimpleNamespace(option=SimpleNamespace(xmlpath=xmlpath))
    if worker:
        config.workerinput = {"workerid": "gw0"}
    return SimpleNamespace(config=config)


def test_sessionfinish_finalizes_the_junit_file_with_the_consoles(tmp_path, finalized):
    xml = tmp_path / "junit.xml"
    xml.write_text("<testsuites/>")
    run = RunReport(consoles={("m", "t"): "text"})
    run.pytest_sessionfinish(session(str(xml)))
    assert finalized == [(xml, {("m", "t"): "text"})]


def test_sessionfinish_leaves_junit_alone_without_a_file_or_on_a_worker(tmp_path, finalized):
    xml = tmp_path / "junit.xml"
    RunReport().pytest_sessionfinish(session(None))  # no --junitxml
    RunReport().pytest_sessionfinish(session(str(xml)))  # --junitxml, but nothing written (e.g. usage error)
    xml.write_text("<testsuites/>")
    RunReport().pytest_sessionfinish(session(str(xml), worker=True))  # the controller writes the file
    assert finalized == []


def test_each_run_registers_its_own_run_report(pytester, monkeypatch):
    """No module globals: two pytest runs in one process do not share retried/quarantined entries."""
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))
    pytester.makepyfile(test_one="def test_x():\n    pass\n")
    seen = []

    class Spy:
        def pytest_sessionfinish(self, session):
            seen.append(session.config.pluginmanager.get_plugin("hil-run-report"))

    for _ in range(2):
        pytester.runpytest("-p", "no:cacheprovider", "-p", "no:labgrid", plugins=[Spy()]).assert_outcomes(passed=1)
    assert len(seen) == 2 and all(isinstance(r, RunReport) for r in seen) and seen[0] is not seen[1]
