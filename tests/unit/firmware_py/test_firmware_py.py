"""firmware_py runs on boards, so it is checked under real MicroPython (the unix port), not only
CPython: every module must import, and the helpers must compute what CPython computes.

Modules for boards with their own IP stack (hil_net) import ``network``, which the unix port
lacks: they run here with tests/mp_stubs/network.py, a scripted network.LAN, standing in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.conftest import REPO

FIRMWARE_PY = REPO / "firmware_py"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or "micropython"
MODULES = sorted(p.stem for p in FIRMWARE_PY.glob("*.py"))
STUBS = REPO / "tests" / "mp_stubs"
NEEDS_NETWORK = {"hil_net"}  # board-only: network.LAN (lwIP boards); the stub stands in for it


def run_micropython(code: str, stubs: bool = False) -> str:
    path = f"{FIRMWARE_PY}:{STUBS}:.frozen" if stubs else f"{FIRMWARE_PY}:.frozen"
    env = os.environ | {"MICROPYPATH": path}
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_under_micropython(module):
    out = run_micropython(f"import sys\ntry:\n    import {module}\n    print('ok')\nexcept ImportError as e:\n"
                          f"    print('importerror', e)", stubs=module in NEEDS_NETWORK)
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


def test_fs_writer_in_pieces_and_check_on_micropython(tmp_path):
    path, data = tmp_path / "f.bin", bytes(range(256)) * 17
    pieces = "".join(f"w.write({data[i : i + 256]!r})\n" for i in range(0, len(data), 256))
    out = run_micropython(f"import hil_fs\nw = hil_fs.writer({str(path)!r})\n{pieces}w.close()\n"
                          f"print(hil_fs.check({str(path)!r}))")  # fmt: skip
    assert out.strip() == f"({len(data)}, {zlib.crc32(data)})" and path.read_bytes() == data


def test_info_reports_micropython():
    out = run_micropython("import hil_info\nd = hil_info.info()\nprint(d['impl'], d['platform'])")
    assert out.split() == ["micropython", "linux"]


def test_only_the_listed_modules_need_network():
    """NEEDS_NETWORK is every module that imports network at its top, and network is all they miss
    on unix (hil_sock imports it inside a function, guarded, for its failure diagnostics)."""
    importers = {m for m in MODULES if re.search(r"^(import|from) network\b",
                                                 (FIRMWARE_PY / f"{m}.py").read_text(), re.M)}
    assert importers == NEEDS_NETWORK
    for module in sorted(NEEDS_NETWORK):
        out = run_micropython(f"try:\n    import {module}\nexcept ImportError as e:\n    print(e)")
        assert out.strip() == "no module named 'network'"


def run_hil_net(statuses: list[int], call: str) -> str:
    """hil_net on MicroPython against the scripted LAN: its output, its calls, or its OSError."""
    code = (f"import network\nnetwork.statuses[:] = {statuses!r}\nimport hil_net\n"
            f"try:\n    print('RESULT', repr({call}))\nexcept OSError as e:\n    print('OSERROR', e)\n"
            "print('LOG', network.log)")
    return run_micropython(code, stubs=True)


def test_net_up_waits_for_a_dhcp_lease():
    out = run_hil_net([1, 1, 3], "hil_net.up(timeout_ms=5000)").splitlines()
    assert re.fullmatch(r"NET 10\.0\.2\.15 \d+", out[0])  # the line the harness keeps as facts
    assert out[1] == "RESULT '10.0.2.15'"
    assert out[2] == "LOG [('active', True)]"  # DHCP: no address configured


def test_net_up_with_static_address_turns_dhcp_off_first():
    out = run_hil_net([3], "hil_net.up('192.168.77.10/24', '192.168.77.1')")
    assert "LOG [('active', True), ('ipconfig', [('dhcp4', False)]), " \
           "('ipconfig', [('addr4', '192.168.77.10/24'), ('gw4', '192.168.77.1')])]" in out


def test_net_up_without_lease_or_carrier_says_which():
    out = run_hil_net([1], "hil_net.up(timeout_ms=50)")
    assert "OSERROR no DHCP lease after 50 ms (link up, no address)" in out
    out = run_hil_net([0], "hil_net.up(timeout_ms=50)")
    assert "OSERROR link down: no carrier on the LAN after 50 ms" in out


def test_net_counters():
    out = run_hil_net([3], "sorted(hil_net.counters().items())")
    assert "RESULT [('rx_dropped', 0), ('rx_errors', 0), ('rx_frames', 7), ('tx_frames', 5)]" in out
