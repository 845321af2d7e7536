"""harness/errors.py: the error kinds the plugin and the CLI tell apart (a user's mistake, the
infrastructure failing, and its kinds)."""

from __future__ import annotations

import pytest

from harness import errors


@pytest.mark.parametrize("kind", [errors.BuildError, errors.BootError, errors.BoardDied, errors.ConsoleTimeout])
def test_infrastructure_kinds(kind):
    assert issubclass(kind, errors.InfrastructureError) and issubclass(kind, errors.HarnessError)
    assert not issubclass(kind, errors.ConfigError)


def test_config_errors_are_not_infrastructure():
    assert issubclass(errors.ConfigError, errors.HarnessError)
    assert not issubclass(errors.ConfigError, errors.InfrastructureError)
    assert str(errors.ConfigError("targets/x.toml: bad key")) == "targets/x.toml: bad key"
