"""Which board app a suite runs: the real one unless a variable names a broken twin."""

from __future__ import annotations

import pytest

from harness.pytest.twins import board_app


def test_the_variable_names_the_twin_else_the_default(monkeypatch):
    monkeypatch.delenv("HIL_X_APP", raising=False)
    assert board_app("HIL_X_APP", "hil_x") == "hil_x"
    monkeypatch.setenv("HIL_X_APP", "")
    assert board_app("HIL_X_APP", "hil_x") == "hil_x"
    monkeypatch.setenv("HIL_X_APP", "hil_x_broken")
    assert board_app("HIL_X_APP", "hil_x") == "hil_x_broken"


def test_a_name_that_is_no_module_is_a_usage_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("HIL_X_APP", "hil-x.py")
    with pytest.raises(pytest.UsageError, match=r"^HIL_X_APP='hil-x.py' is not a module name: name a firmware_py "
                                                r"module, e.g. hil_x$"):
        board_app("HIL_X_APP", "hil_x")
