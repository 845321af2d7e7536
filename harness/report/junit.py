"""JUnit post-processing and summaries.

pytest writes a failure in a test's call phase as <failure>; when the cause was the board or its
plumbing (InfrastructureError), CI must see <error> instead, so flaky infrastructure is never
mistaken for a firmware bug. The console log pytest stored as a report section becomes the
test case's <system-out>."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Properties, Property, Skipped, TestCase

INFRA_PROPERTY = "hil_infrastructure_error"
BASELINE_PROPERTY = "hil_baseline"  # NEW | KNOWN | FLAKY | FIXED against `--baseline REF` (harness/history)


def _properties(case: TestCase) -> dict[str, str]:
    props = case.child(Properties)
    return {p.name: p.value for p in props} if props is not None else {}


def finalize_junit(
    path: Path,
    consoles: dict[tuple[str, str], str] | None = None,
    properties: dict[tuple[str, str], dict[str, str]] | None = None,
) -> None:
    """Turn infrastructure failures into <error>, attach console logs as <system-out> and add
    ``properties`` (e.g. the baseline label, known only when the run ends) to their test cases."""
    xml = JUnitXml.fromfile(str(path))
    consoles = consoles or {}
    properties = properties or {}
    changed = False
    for suite in _suites(xml):
        for case in suite:
            console = consoles.get((case.classname, case.name))
            if console:
                case.system_out = (case.system_out or "") + console
                changed = True
            if extra := properties.get((case.classname, case.name)):
                _add_properties(case, extra)
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


def _add_properties(case: TestCase, extra: dict[str, str]) -> None:
    props = case.child(Properties)
    if props is None:
        props = Properties()
        case._elem.insert(0, props._elem)  # <properties> comes first in a <testcase>
    for name, value in extra.items():
        props.add_property(Property(name, value))


def _suites(xml):
    return list(xml) if isinstance(xml, JUnitXml) else [xml]


@dataclass
class BoardTally:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    xfailed: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    interrupted: bool = False  # the run was cut short (Ctrl-C): some of the board's tests never ran

    @property
    def verdict(self) -> str:
        if self.interrupted:  # never PASS on a partial run; the counts say how far it got
            return "INTERRUPTED"
        if self.errors:
            return "ERROR"
        if self.failed:
            return "FAIL"
        return "PASS" if self.passed else "SKIP"


def tally_by_board(cases: list[CaseResult], interrupted: bool = False) -> dict[str, BoardTally]:
    """Per-board counts and verdict; ``interrupted``: the run was cut short, every verdict says so."""
    tallies: dict[str, BoardTally] = defaultdict(lambda: BoardTally(interrupted=interrupted))
    counter = {"passed": "passed", "failed": "failed", "error": "errors", "xfailed": "xfailed", "skipped": "skipped"}
    for case in cases:
        t = tallies[case.board]
        setattr(t, counter[case.outcome], getattr(t, counter[case.outcome]) + 1)
        if case.outcome in ("error", "failed"):
            t.reasons.append(f"{case.name}: {case.message}")
    return dict(tallies)


# --- reading a run back: test cases with their board, suite and outcome ---------------------------

RETRIED_PROPERTY = "hil_retried"
FIRST_ERROR_PROPERTY = "hil_first_error"
QUARANTINE_PROPERTY = "hil_quarantined"
OUTCOMES = ("passed", "failed", "error", "xfailed", "skipped")  # xfailed: expected failures kept in data


@dataclass
class CaseResult:
    board: str
    suite: str
    classname: str
    name: str
    outcome: str  # passed | failed | error | xfailed | skipped
    message: str
    text: str
    seconds: float
    system_out: str
    props: dict[str, str]

    @property
    def retried(self) -> bool:
        return RETRIED_PROPERTY in self.props


def suite_of(classname: str) -> str:
    """The suite a test belongs to: the directory under suites/ (suites.smoke.test_x -> smoke),
    else its test module (tests.test_plugin -> test_plugin)."""
    parts = [p for p in classname.split(".") if p]
    if "suites" in parts:
        i = parts.index("suites")
        if i + 2 < len(parts) or (i + 2 == len(parts) and not parts[i + 1].startswith("test_")):
            return parts[i + 1]
    modules = [p for p in parts if p.startswith("test_") or p.endswith("_test")]
    return modules[0] if modules else (parts[-1] if parts else "(tests)")


def _load(path: Path) -> JUnitXml:
    from harness.errors import HarnessError

    try:
        return JUnitXml.fromfile(str(path))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such JUnit file; run `hil run` first or give the right path") from None
    except Exception as exc:  # junitparser raises lxml/etree parse errors
        raise HarnessError(f"{path}: not a JUnit XML file ({exc}); give a file written by pytest --junitxml") from None


def read_cases(path: Path) -> list[CaseResult]:
    cases = []
    for suite in _suites(_load(path)):
        for case in suite:
            props = _properties(case)
            results = list(case.result)
            kinds = {type(r) for r in results}
            outcome = "passed"
            for kind, name in ((Skipped, "skipped"), (Failure, "failed"), (Error, "error")):
                if kind in kinds:
                    outcome = name
            if outcome == "skipped" and any(r.type == "pytest.xfail" for r in results if isinstance(r, Skipped)):
                outcome = "xfailed"  # an expected failure (reason in the suite's data), not a skip
            first = next((r for r in results if type(r) in (Error, Failure, Skipped)), None)
            result = CaseResult(
                board=props.get("board", "(no board)"), suite=suite_of(case.classname or ""),
                classname=case.classname or "", name=case.name or "", outcome=outcome,
                message=(first.message or "") if first is not None else "",
                text=(first.text or "") if first is not None else "",
                seconds=float(case.time or 0.0), system_out=case.system_out or "", props=props,
            )  # fmt: skip
            cases.append(result)
    return cases


PAIR_PROPERTY = "boards"  # multi-board tests (harness/pytest/multi.py): "role=board,role=board"


def idle_pairings(cases: list[CaseResult]) -> dict[str, str]:
    """Multi-board pairings none of whose cases ran (every one skipped: a board with no network or
    CAN link to share), by pairing id, with the first skip reason. The reports give each one line
    instead of a row of skips: four boards make 16 pairings, and most of a run's may be these."""
    ran: set[str] = set()
    why: dict[str, str] = {}
    for c in cases:
        if PAIR_PROPERTY in c.props:
            if c.outcome == "skipped":
                why.setdefault(c.board, c.message)
            else:
                ran.add(c.board)
    return {board: reason for board, reason in why.items() if board not in ran}


def matrix(cases: list[CaseResult]) -> dict[str, dict[str, dict[str, int]]]:
    """board -> suite -> outcome -> count."""
    grid: dict[str, dict[str, dict[str, int]]] = {}
    for c in cases:
        cell = grid.setdefault(c.board, {}).setdefault(c.suite, dict.fromkeys(OUTCOMES, 0))
        cell[c.outcome] += 1
    return grid


def cell_verdict(cell: dict[str, int]) -> str:
    if cell.get("error"):
        return "error"
    if cell.get("failed"):
        return "failed"
    return "passed" if cell.get("passed") else "skipped"


def board_facts(cases: list[CaseResult]) -> dict[str, dict[str, str]]:
    """What each board said about itself (from the first test case that carried it)."""
    facts: dict[str, dict[str, str]] = {}
    for c in cases:
        known = facts.setdefault(c.board, {})
        for key in ("micropython_version", "banner", "image_digest", "boot_seconds"):
            if c.props.get(key) and key not in known:
                known[key] = c.props[key]
        if QUARANTINE_PROPERTY in c.props:
            known.setdefault("quarantined", c.props[QUARANTINE_PROPERTY])
    return facts


# --- merging JUnit files from separate jobs -------------------------------------------------------


def merge_junit(out: Path, inputs: list[Path]) -> dict[str, int]:
    """Merge JUnit files (one CI job per board) into one: one <testsuite> per board, every test case
    exactly once (a case seen in two inputs, e.g. a re-run job, keeps the later file's result).
    Returns board -> number of test cases."""
    from junitparser import TestSuite

    chosen: dict[tuple[str, str, str], TestCase] = {}
    meta: dict[str, str] = {}
    for path in inputs:
        for suite in _suites(_load(path)):
            meta.setdefault("hostname", suite.hostname or "")
            meta.setdefault("timestamp", suite.timestamp or "")
            for case in suite:
                board = _properties(case).get("board", "")
                key = (board, case.classname or "", case.name or "")
                chosen.pop(key, None)  # re-insert: keeps the later file's case, in its order
                chosen[key] = case
    merged = JUnitXml()
    suites: dict[str, TestSuite] = {}
    for (board, _, _), case in chosen.items():
        if board not in suites:
            suite = TestSuite(f"hil {board}" if board else "hil")
            if meta.get("hostname"):
                suite.hostname = meta["hostname"]
            if meta.get("timestamp"):
                suite.timestamp = meta["timestamp"]
            suites[board] = suite
        suites[board].add_testcase(case)
    for board in sorted(suites):
        suites[board].update_statistics()
        merged.add_testsuite(suites[board])
    merged.update_statistics()
    out.parent.mkdir(parents=True, exist_ok=True)
    merged.write(str(out))
    counts: dict[str, int] = defaultdict(int)
    for board, _, _ in chosen:
        counts[board] += 1
    return dict(counts)
