"""What the JUnit file and the terminal summary get beyond pytest's own: each test's console text
(written into the JUnit file at the end), the tests that were retried and the boards that were
quarantined. Runs where JUnit is written (the xdist controller too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.pytest.evidence import TIMELINE_SECTION
from harness.pytest.state import CONSOLE_SECTION
from harness.report.junit import (
    BASELINE_PROPERTY,
    FIRST_ERROR_PROPERTY,
    QUARANTINE_PROPERTY,
    RETRIED_PROPERTY,
    finalize_junit,
)


@dataclass(eq=False)  # a plugin object: pluggy keeps plugins in sets, so it must hash by identity
class RunReport:
    """A plugin object, one per pytest run (registered at configure): no module globals."""

    consoles: dict[tuple[str, str], str] = field(default_factory=dict)
    retried: dict[str, str] = field(default_factory=dict)
    quarantines: dict[str, str] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        text = "".join(content for name, content in report.sections if name.endswith(CONSOLE_SECTION + " call"))
        # the evidence timeline (harness/pytest/evidence.py: on the teardown report) follows the console text
        text += "".join(content for name, content in report.sections if name == TIMELINE_SECTION)
        if text:
            from _pytest.junitxml import mangle_test_address

            names = mangle_test_address(report.nodeid)
            self.consoles[(".".join(names[:-1]), names[-1])] = text
        props = dict(report.user_properties)
        if report.when == "teardown" and RETRIED_PROPERTY in props:
            self.retried[report.nodeid] = props.get(FIRST_ERROR_PROPERTY, "")
        if report.when == "teardown" and QUARANTINE_PROPERTY in props:
            self.quarantines[props.get("board", "?")] = props[QUARANTINE_PROPERTY]

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if hasattr(config, "workerinput"):
            return
        if self.retried:
            terminalreporter.write_sep("-", "hil: retried after an infrastructure error")
            for nodeid, error in sorted(self.retried.items()):
                terminalreporter.write_line(f"RETRIED {nodeid}: first attempt: {(error.splitlines() or [''])[0][:200]}")
        if self.quarantines:
            terminalreporter.write_sep("-", "hil: quarantined boards", red=True)
            for board_name, message in sorted(self.quarantines.items()):
                terminalreporter.write_line(f"QUARANTINED {board_name}: {message.splitlines()[0][:300]}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        xmlpath = getattr(session.config.option, "xmlpath", None)
        if xmlpath and not hasattr(session.config, "workerinput") and Path(xmlpath).exists():
            labels = _label_properties(session.config)
            if labels:
                finalize_junit(Path(xmlpath), self.consoles, labels)
            else:
                finalize_junit(Path(xmlpath), self.consoles)


def _label_properties(config: pytest.Config) -> dict[tuple[str, str], dict[str, str]]:
    """The baseline labels harness/pytest/history.py worked out (its plugin object, registered as
    hil-history on the controller), under their JUnit names."""
    from _pytest.junitxml import mangle_test_address

    props = {}
    manager = getattr(config, "pluginmanager", None)
    recorder = manager.get_plugin("hil-history") if manager is not None else None
    for nodeid, label in getattr(recorder, "labels", {}).items():
        names = mangle_test_address(nodeid)
        props[(".".join(names[:-1]), names[-1])] = {BASELINE_PROPERTY: label}
    return props


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RunReport(), "hil-run-report")
