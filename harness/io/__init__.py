"""The io layer: bytes to and from a board (transports by port scheme), the console on top of
them (pexpect, log), and MicroPython's raw REPL on the console.

A transport module registers an opener for the port schemes it serves (harness/config/ports.py
parses the references); a new transport is one module here."""

from __future__ import annotations

from harness.io import recording, rfc2217, transport  # noqa: F401 - the transports this harness ships register themselves
from harness.io.opener import TRANSPORTS, open_port, register

__all__ = ["TRANSPORTS", "open_port", "register"]
