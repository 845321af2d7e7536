"""firmware_py/hil_paste.py under real MicroPython (the unix port, its blocking-stdin branch): the
code it takes is the code sent, and it acknowledges each window and the end, before the code runs;
unz() undoes harness/io/codepack.py's encoding."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.io import codepack
from tests.unit.firmware_py.test_firmware_py import FIRMWARE_PY, MICROPYTHON


@pytest.mark.parametrize(("code", "every"), [(b"print(6 * 7)\n", 4), (b"x = 'ab'\nprint(x * 3)\n", 21)])
def test_take_acknowledges_each_window_then_the_code_runs(code, every):
    driver = f"import hil_paste, sys\nc = hil_paste.take({len(code)}, {every})\nsys.stdout.write('|')\nexec(c)"
    env = os.environ | {"MICROPYPATH": f"{FIRMWARE_PY}:.frozen"}
    proc = subprocess.run([MICROPYTHON, "-c", driver], input=code, capture_output=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    acks, _, out = proc.stdout.partition(b"|")
    assert acks == b"\x01" * -(-len(code) // every)  # one per window, the last one partial
    assert out == subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).stdout


def _unz(wire: bytes, wbits: int, after: str) -> subprocess.CompletedProcess:
    """The board's receiver as the host starts it, then ``after`` (the rest of the raw REPL line)."""
    driver = f"import hil_paste, sys\nc = hil_paste.unz({len(wire)}, {wbits})\nsys.stdout.write('|')\n{after}"
    env = os.environ | {"MICROPYPATH": f"{FIRMWARE_PY}:.frozen"}
    return subprocess.run([MICROPYTHON, "-c", driver], input=wire, capture_output=True, timeout=30, env=env)


def test_unz_takes_the_escaped_deflate_stream_and_the_code_runs_in_main():
    # every byte value in a string literal, Ctrl-C and the escape byte among them, and long enough
    # for a window of more than the minimum
    code = (
        b"data = bytes(range(256)) + b'\\x03\\x10\\x10\\x23\\x10\\x30\\r\\x10\\x2d'\n"
        + b"".join(b"v%d = %d\n" % (i, i * i) for i in range(300))
        + b"print(len(data), sum(data), v299, __name__)\n"
    )
    wbits, wire = codepack.encode(code)
    assert wbits > codepack.MIN_WBITS and all(bytes([0x10, b]) in wire for b in (0x30, 0x23, 0x2D))
    proc = _unz(wire, wbits, "exec(c)\nprint(v7)")
    assert proc.returncode == 0, proc.stderr
    ready, _, out = proc.stdout.partition(b"|")
    assert ready == b"\x01"  # said before taking a byte: the host sends the code only then
    total = sum(range(256)) + 3 + 16 + 16 + 0x23 + 16 + 0x30 + 13 + 16 + 0x2D
    assert out == b"265 %d 89401 __main__\n49\n" % total  # its globals are the REPL's (__main__), as plain code's


def test_unz_compiles_as_stdin_so_tracebacks_name_the_lines_plain_code_has():
    code = b"x = 1\n\ndef f():\n    raise ValueError('on line 4')\n\nf()\n"
    wbits, wire = codepack.encode(code)
    proc = _unz(wire, wbits, "exec(c)")
    assert b'File "<stdin>", line 4, in f' in proc.stdout + proc.stderr
    assert b'File "<stdin>", line 6, in <module>' in proc.stdout + proc.stderr
