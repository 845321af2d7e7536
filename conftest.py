"""Root conftest: the harness's pytest plugin is loaded through its `pytest11` entry point
(pyproject.toml), so suites and tests here get the `board`/`dut` fixtures and `--board`."""

from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    from harness.pytest.selection import selected_boards

    return "hil boards: " + ", ".join(selected_boards(config))
