"""Meta-tests of the BSD socket suite (suites/sockets): its message-parser cases catch a board app
that assumes one recv() = one message, its parser frames correctly under real MicroPython, and its
expected-failure data names real tests and boards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT

SUITE = ROOT / "suites" / "sockets"
FIRMWARE_PY = ROOT / "firmware_py"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")

needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")


@needs_micropython
def test_parser_frames_every_segmentation_under_micropython():
    msgs = [b"", b"A", b"hello", bytes(range(256)) * 2, b"x" * 30]
    for framing in ("len", "line"):
        enc = [(len(m).to_bytes(2, "big") + m) if framing == "len" else m.replace(b"\n", b"") + b"\n" for m in msgs]
        stream = b"".join(enc)
        want = [m if framing == "len" else m.replace(b"\n", b"") for m in msgs]
        code = (
            "import hil_sock_msg\n"
            f"s = {stream!r}\n"
            "def run(cuts):\n"
            f"    p = hil_sock_msg.Parser({framing!r})\n"
            "    out, last = [], 0\n"
            "    for c in cuts + [len(s)]:\n"
            "        out += p.feed(s[last:c])\n"
            "        last = c\n"
            "    return out, len(p.buf)\n"
            "first = run([])\n"
            "same = run(list(range(1, len(s)))) == first\n"
            "for k in range(len(s)):\n"
            "    same = same and run([k]) == first\n"
            "print(same)\n"
            "print([len(m) for m in first[0]], first[1])\n"
            "print([hil_sock_msg.reply(i, m) for i, m in enumerate(first[0])])\n"
        )
        same, lengths, replies = run_micropython(code).splitlines()
        assert same == "True"
        assert lengths == f"{[len(m) for m in want]} 0"
        expected = [f"{i} {len(m)} {zlib.crc32(m) & 0xFFFFFFFF:08x}\n".encode() for i, m in enumerate(want)]
        assert replies == repr(expected)


def test_expected_failures_name_real_tests_and_boards():
    data = tomllib.loads((SUITE / "expected_failures.toml").read_text())
    names = set()
    for path in SUITE.glob("test_*.py"):
        names |= {line.split("(")[0][4:] for line in path.read_text().splitlines() if line.startswith("def test_")}
    boards = {p.stem for p in (ROOT / "targets").glob("*.toml")}
    for section, tests in data.items():
        for board in section.split(","):
            assert board == "*" or board.strip() in boards, f"unknown board {board!r} in [{section}]"
        for test, entry in tests.items():
            reason = entry["reason"] if isinstance(entry, dict) else entry
            assert test in names, f"[{section}] {test}: no such test in {SUITE}"
            assert len(reason) > 20, f"[{section}] {test}: give the reason"


def run_micropython(code: str) -> str:
    env = os.environ | {"MICROPYPATH": f"{FIRMWARE_PY}:.frozen"}
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


@needs_micropython
def test_every_twin_offers_the_board_apps_functions():
    """HIL_SOCK_APP may name any twin: each imports under MicroPython and has every server the
    suite starts (serve, file_server, udp_echo), so a run fails on its bug, not on an ImportError."""
    twins = sorted(p.stem for p in FIRMWARE_PY.glob("hil_sock_*.py") if p.stem != "hil_sock_msg")
    assert {"hil_sock_naive", "hil_sock_shortsend", "hil_sock_noclose", "hil_sock_udptrunc"} <= set(twins)
    code = "".join(
        f"import {m}\nprint({m!r}, all(hasattr({m}, f) for f in ('serve', 'file_server', 'udp_echo')))\n"
        for m in ["hil_sock_msg", *twins]
    )
    lines = run_micropython(code).splitlines()
    assert lines == [f"{m} True" for m in ["hil_sock_msg", *twins]]
