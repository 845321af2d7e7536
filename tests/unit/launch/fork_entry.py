"""A stand-in entry point for the fork server's tests: like the unix port, it prints a banner, reads
its terminal, exits 0 on "q" (a soft reset), 3 on "x", and shows whether it has a controlling tty."""

from __future__ import annotations

import os
import sys

STATE: list[str] = []  # what this process was told: a fresh child must start with none of it


def main() -> int:
    tty = os.ttyname(0) if os.isatty(0) else "-"
    print("pid", os.getpid(), "argv", " ".join(sys.argv), "tty", tty, "sid", os.getsid(0) == os.getpid(),
          "state", len(STATE), "env", os.environ.get("HIL_FORK_TEST", "-"), flush=True)
    data = os.read(0, 100)
    STATE.append(data.decode())
    return 0 if b"q" in data else 3
