"""JUnit post-processing and summaries.

pytest writes a failure in a test's call phase as <failure>; when the cause was the board or its
plumbing (InfrastructureError), CI must see <error> instead, so flaky infrastructure is never
mistaken for a firmware bug. The console log pytest stored as a report section becomes the
test case's <system-out>."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Properties, Skipped, TestCase

INFRA_PROPERTY = "hil_infrastructure_error"


def _properties(case: TestCase) -> dict[str, str]:
    props = case.child(Properties)
    return {p.name: p.value for p in props} if props is not None else {}


def finalize_junit(path: Path, consoles: dict[tuple[str, str], str] | None = None) -> None:
    """Turn infrastructure failures into <error> and attach console logs as <system-out>."""
    xml = JUnitXml.fromfile(str(path))
    consoles = consoles or {}
    changed = False
    for suite in _suites(xml):
        for case in suite:
            console = consoles.get((case.classname, case.name))
            if console:
                case.system_out = (case.system_out or "") + console
                changed = True
            props = _properties(case)
            if INFRA_PROPERTY not in props:
                continue
            results = list(case.result)
            new = []
            for result in results:
                if isinstance(result, Failure):
                    err = Error(result.message, props[INFRA_PROPERTY])
                    err.text = result.text
                    new.append(err)
                    changed = True
                else:
                    new.append(result)
            case.result = new
        suite.update_statistics()
    if changed:
        xml.write(str(path))


def _suites(xml):  # noqa: ANN001, ANN202 - JUnitXml or a bare TestSuite root
    return list(xml) if isinstance(xml, JUnitXml) else [xml]


@dataclass
class BoardTally:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.errors:
            return "ERROR"
        if self.failed:
            return "FAIL"
        return "PASS" if self.passed else "SKIP"


def tally_by_board(path: Path) -> dict[str, BoardTally]:
    tallies: dict[str, BoardTally] = defaultdict(BoardTally)
    for suite in _suites(JUnitXml.fromfile(str(path))):
        for case in suite:
            board = _properties(case).get("board", "(no board)")
            t = tallies[board]
            kinds = {type(r) for r in case.result}
            if Error in kinds:
                t.errors += 1
                t.reasons += [f"{case.name}: {r.message}" for r in case.result if isinstance(r, Error)]
            elif Failure in kinds:
                t.failed += 1
                t.reasons += [f"{case.name}: {r.message}" for r in case.result if isinstance(r, Failure)]
            elif Skipped in kinds:
                t.skipped += 1
            else:
                t.passed += 1
    return dict(tallies)
