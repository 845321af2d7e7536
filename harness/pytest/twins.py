"""Which board app a suite runs: the real one, or a broken twin named in an environment variable
(the harness's own tests point a suite at a twin to prove the suite catches its bug)."""

from __future__ import annotations

import os

import pytest


def board_app(env: str, default: str) -> str:
    """The firmware_py module ``$env`` names, else ``default``; a name that is not a module name
    is a usage error naming the variable."""
    name = os.environ.get(env) or default
    if not name.isidentifier():
        raise pytest.UsageError(f"{env}={name!r} is not a module name: name a firmware_py module, e.g. {default}")
    return name
