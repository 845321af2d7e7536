"""firmware_py runs on boards, so it is checked under real MicroPython (the unix port), not only
CPython: every module must import, and the helpers must compute what CPython computes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

FIRMWARE_PY = Path(__file__).resolve().parent.parent / "firmware_py"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or "micropython"
MODULES = sorted(p.stem for p in FIRMWARE_PY.glob("*.py"))


def run_micropython(code: str) -> str:
    env = os.environ | {"MICROPYPATH": f"{FIRMWARE_PY}:.frozen"}
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_under_micropython(module):
    out = run_micropython(f"import sys\ntry:\n    import {module}\n    print('ok')\nexcept ImportError as e:\n"
                          f"    print('importerror', e)")
    # hil_semihost needs asm_thumb (ARM boards only) and says so with ImportError, never a crash.
    assert out.strip() == "ok" or (module == "hil_semihost" and out.startswith("importerror"))


def test_crc32_matches_zlib_on_micropython():
    data = bytes(range(256)) * 3 + b"tail"
    out = run_micropython(f"import hil_fs\nprint(hil_fs.crc32({data!r}))")
    assert int(out) == zlib.crc32(data)


def test_fs_round_trip_on_micropython(tmp_path):
    path = tmp_path / "f.bin"
    out = run_micropython(f"import hil_fs\nprint(hil_fs.roundtrip({str(path)!r}, b'abc' * 100))")
    assert out.strip() == f"(300, {zlib.crc32(b'abc' * 100)})"
    assert path.read_bytes() == b"abc" * 100


def test_info_reports_micropython():
    out = run_micropython("import hil_info\nd = hil_info.info()\nprint(d['impl'], d['platform'])")
    assert out.split() == ["micropython", "linux"]
