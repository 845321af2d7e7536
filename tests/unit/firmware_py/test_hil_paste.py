"""firmware_py/hil_paste.py under real MicroPython (the unix port, its blocking-stdin branch): the
code it takes is the code sent, and it acknowledges each window and the end, before the code runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
