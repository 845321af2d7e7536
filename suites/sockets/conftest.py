"""Fixtures of the BSD socket suite: ``peer`` (the host side of every two-party test, see
peerlib.py) and ``parser_module`` (which message-parser app the board runs)."""

from __future__ import annotations

import os

import pytest
from peerlib import Peer


@pytest.fixture
def parser_module() -> str:
    """The board's message-parser module. HIL_SOCK_PARSER=hil_sock_naive points the suite at the
    deliberately broken variant (tests/test_suite_sockets.py proves the suite catches it)."""
    return os.environ.get("HIL_SOCK_PARSER", "hil_sock_msg")


@pytest.fixture
def peer(dut, parser_module) -> Peer:
    p = Peer(dut, parser_module)
    yield p
    p.close()
