"""One case per MicroPython test file (tests/<dir>/<name>.py) per board: soft reset, run the file's
source through the REPL, judge its output as run-tests.py does (see conftest.py for selection)."""

from __future__ import annotations

import difflib

import pytest
from mp_expect import expected_output, match_special, needs_unittest, unittest_result
from mp_rules import SPECIAL_TESTS, platform_dirs, skip_reason
from mp_run import run_source
from mp_tree import selected_for

DIFF_LINES = 60  # of a failure's diff in the report
HOST_PROCESS = "process"  # launch kind of a board that runs as a host process (native)
# cwd and sys.path[0] = the test's directory; the REPL's sys.path[0] is '' (the cwd): replaced
IN_TEST_DIR = """import os as _o, sys as _s
_o.chdir({here!r})
_s.path[:1] = [{here!r}] + [p for p in _s.path[:1] if p]
del _o, _s"""


def _diff(expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "board", lineterm=""))
    more = f"\n... ({len(lines) - DIFF_LINES} more diff lines)" if len(lines) > DIFF_LINES else ""
    return "\n".join(lines[:DIFF_LINES]) + more


def test_micropython(dut, mp_features, mp_test, mp_tests_dir, mp_timeout, mp_selection):
    why = skip_reason(mp_test, mp_features)
    if why:
        pytest.skip(f"run-tests.py skips it on {mp_features.platform}: {why}")
    if not selected_for(mp_test, mp_selection, platform_dirs(mp_features)):
        pytest.skip(f"not in run-tests.py's default directories for platform {mp_features.platform}")
    path = mp_tests_dir / mp_test
    # before the board runs it: a test's sockets or files stay open on a board until its next reset
    # (run-tests.py's unix process has exited by the time CPython runs the file)
    expected = expected_output(path)
    if dut.spec.launch.kind == HOST_PROCESS:
        # the board is a process on this host and sees the test's files: find them as run-tests.py's
        # unix runs do (cwd = the test's directory, L435-449; the script's directory is sys.path[0])
        dut.exec(IN_TEST_DIR.format(here=str(path.parent)))
    output = run_source(dut, path.read_text(encoding="utf-8", errors="replace"), mp_timeout)
    if output == "SKIP\n":  # L901-911: the test found the board lacks what it tests
        pytest.skip("the test printed SKIP")
    if needs_unittest(output):  # L913-923 (run-tests.py stops the whole run there)
        pytest.skip("needs the unittest module on the board (mpremote mip install unittest)")
    if mp_test in SPECIAL_TESTS:  # L481-522: the .exp lines are regexes
        output = match_special(output, expected)
    result = unittest_result(output)
    if result is not None:  # L965-979: the unittest summary is the verdict
        assert result.passed, f"{mp_test}: {result.summary}\n{output[-2000:]}"
        return
    if output != expected:
        pytest.fail(f"{mp_test}: output differs from {_source(path)}\n{_diff(expected, output)}", pytrace=False)


def _source(path) -> str:
    return "its .exp file" if path.with_name(path.name + ".exp").is_file() else "CPython's output"

