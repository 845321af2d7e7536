"""What a MicroPython test file should print, and how its actual output is judged, as run-tests.py
does: the .exp file, else CPython's output (L942-962); regex-matched .exp lines for the special
tests (L481-522); unittest summaries (L913-939, L965-980). Text is str, "\\n" line ends."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CPYTHON_TIMEOUT = 60  # run-tests.py has none; a hung CPython must not hang the suite
UNITTEST_MISSING = "ImportError: no module named 'unittest'"


def cpython_command() -> list[str]:
    """run-tests.py's CPYTHON3_CMD (L41, L48): $MICROPY_CPYTHON3 (default: this CPython) -BS."""
    return [os.environ.get("MICROPY_CPYTHON3") or sys.executable, "-BS"]


@functools.cache
def expected_output(test_file: Path) -> str:
    """The .exp file's text, else what CPython prints running the file in its directory (kept in
    the harness's cache by CPython version and the file's bytes: it cannot change for those, and a
    CPython start per test would cost more than the test)."""
    exp = test_file.with_name(test_file.name + ".exp")
    data = exp.read_bytes() if exp.is_file() else _cpython_output(test_file)
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def _cpython_output(test_file: Path) -> bytes:
    command = cpython_command()
    key = hashlib.sha256("\0".join([*command, sys.version]).encode() + b"\0" + test_file.read_bytes()).hexdigest()
    cached = _cache_dir() / key[:32]
    try:
        return cached.read_bytes()
    except OSError:
        pass
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # L58
    try:
        data = subprocess.run(
            [*command, str(test_file)], cwd=test_file.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=CPYTHON_TIMEOUT, check=True,
        ).stdout  # fmt: skip
    except subprocess.CalledProcessError as er:
        return b"CPYTHON3 CRASH:\n" + er.output  # not kept: say it again next time
    except subprocess.TimeoutExpired as er:
        return b"CPYTHON3 CRASH:\n" + (er.output or b"") + b"TIMEOUT"
    with contextlib.suppress(OSError):  # a read-only or full cache: computed again next time
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}")
        partial.write_bytes(data)
        partial.replace(cached)
    return data


def _cache_dir() -> Path:
    return Path(os.environ.get("HIL_CACHE") or Path.home() / ".cache" / "hil") / "mp-expected"


def convert_regex_escapes(line: str) -> str:
    """An .exp line of a special test as a regex (L193-210): backslash-escaped characters are
    regex syntax, the other regex metacharacters literal; CRs before the final newline allowed."""
    cs: list[str] = []
    escape = False
    for c in line:
        if escape:
            escape = False
            cs.append(c)
        elif c == "\\":
            escape = True
        elif c in "()[]{}.*+^$":
            cs.append("\\" + c)
        else:
            cs.append(c)
    if cs and cs[-1] == "\n":
        cs[-1] = "\r*\n"
    return "".join(cs)


def match_special(output: str, exp: str) -> str:
    """The output with each line that matches its .exp regex replaced by the .exp line, so that an
    output matching the .exp compares equal to it (L481-522, line for line). "########" in the .exp
    stands for any number of whole lines."""
    lines_exp: list[tuple[str, re.Pattern[str] | None]] = [
        (line, None) if line == "########\n" else (line, re.compile(convert_regex_escapes(line)))
        for line in exp.splitlines(keepends=True)
    ]
    lines = [line + "\n" for line in output.split("\n")]
    if output.endswith("\n"):
        lines = lines[:-1]
    i = 0
    for k, (text, pattern) in enumerate(lines_exp):
        if pattern is None:
            follow = lines_exp[k + 1][1]
            skip = 0
            while i + skip < len(lines) and not follow.match(lines[i + skip]):
                skip += 1
            if i + skip >= len(lines):
                lines[i] = "######## FAIL\n"
                break
            del lines[i : i + skip]
            lines.insert(i, "########\n")
            i += 1
        else:
            if pattern.match(lines[i]):
                lines[i] = text
            i += 1
        if i >= len(lines):
            break
    return "".join(lines)


@dataclass(frozen=True)
class UnittestResult:
    passed: bool
    summary: str


_RAN = re.compile(r"Ran (\d+) tests$")
_RESULT = re.compile(r"((OK)( \(skipped=(\d+)\))?|(FAILED) \(failures=(\d+), errors=(\d+)\))$")


def unittest_result(output: str) -> UnittestResult | None:
    """The verdict of a test that ran unittest.main(), from its summary lines (L919-939)."""
    lines = output.splitlines()
    if not (len(lines) > 4 and lines[-4] == "-" * 70 and lines[-2] == ""):
        return None
    ran, result = _RAN.match(lines[-3]), _RESULT.match(lines[-1])
    if not (ran and result):
        return None
    return UnittestResult(passed=result.group(2) == "OK", summary=f"{lines[-3]}: {lines[-1]}")


def needs_unittest(output: str) -> bool:
    """The board has no unittest module (L914-923: run-tests.py stops the whole run here)."""
    return UNITTEST_MISSING in output.splitlines()[-3:]
