"""Expected failures kept in data, not code (pytest plugin, entry point ``hil_expectations``).

A suite directory may hold ``expected_failures.toml``:

    ["*"]                        # every board
    test_alpn = "MicroPython's tls module has no ALPN"
    [native]                     # one board
    test_so_error = "the unix port has no SO_ERROR"
    ["mps2_an385,mps2_an385_tap"]  # several boards (one firmware, two links)
    test_msg_peek = "modlwip has no MSG_PEEK"

Each listed test is marked xfail(strict=True) on that board with the reason: it must fail (an
unexpected pass is reported, so the list stays honest), and JUnit shows it as skipped with the
reason. An entry {reason = "...", strict = false} may also pass (an outcome that depends on timing).
Names are test function names, without the [board] parameter."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from harness.config.schema import read_toml
from harness.errors import ConfigError
from harness.pytest.state import board_param

FILE = "expected_failures.toml"


@functools.cache
def load(directory: Path) -> dict[str, dict[str, str]]:
    path = directory / FILE
    if not path.exists():
        return {}
    data = read_toml(path, "expected-failures file")
    for board, tests in data.items():
        if not isinstance(tests, dict) or not all(_entry_ok(v) for v in tests.values()):
            raise ConfigError(
                f"{path}: [{board}] must map test names to non-empty reason strings "
                '(or {reason = "...", strict = false} for outcomes that depend on timing)'
            )
    return data


def _entry_ok(value: object) -> bool:
    if isinstance(value, dict):
        return set(value) <= {"reason", "strict"} and _entry_ok(value.get("reason")) and (
            isinstance(value.get("strict", True), bool)
        )
    return isinstance(value, str) and bool(value)


def expectation_for(test_file: Path, board: str, test_name: str) -> tuple[str, bool] | None:
    """(reason, strict) of an expected failure, or None."""
    entry = reason_for(test_file, board, test_name)
    if entry is None:
        return None
    if isinstance(entry, dict):
        return entry["reason"], entry.get("strict", True)
    return entry, True


def reason_for(test_file: Path, board: str, test_name: str) -> str | dict | None:
    for directory in (test_file.parent, *test_file.parent.parents):
        data = load(directory)
        sections = [k for k in data if board in (b.strip() for b in k.split(","))] + ["*"]
        for section in sections:
            if test_name in data.get(section, {}):
                return data[section][test_name]
        if (directory / "pyproject.toml").exists():
            break
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        board = board_param(item)
        if board is None or not hasattr(item, "originalname"):
            continue
        try:
            expected = expectation_for(Path(str(item.fspath)), board, item.originalname)
        except ConfigError as exc:  # a broken expected_failures.toml: one line, not an INTERNALERROR
            raise pytest.UsageError(str(exc)) from None
        if expected:
            reason, strict = expected
            item.add_marker(pytest.mark.xfail(reason=f"{board}: {reason}", strict=strict))
