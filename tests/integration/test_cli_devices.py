"""`hil devices`, `hil flash`, `hil smoke` as a user runs them: real subprocesses on a tray of QEMU
micro:bits attached three ways at once — a plain serial port (its pty), ser2net/RFC 2217 on
loopback, and a labgrid place (coordinator + exporter on loopback)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.testing import remote as local_lab
from harness.testing.emulated import EmulatedDevice

HIL = [sys.executable, "-m", "harness.cli.main"]
# pyserial 3.5's RFC 2217 client uses Thread.setDaemon/setName
pytestmark = pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")
# the pacing of targets/microbit.toml: 32-byte chunks 2 ms apart lost bytes when three emulated
# micro:bits shared the 2-core machine with other work (a large script arrived with gaps)
MICROBIT = ('console = { write_chunk = 16, write_gap_ms = 4, raw_paste = false }\n'
            'capabilities = { fs = true, heap_kb = 10 }\nexpect_version = "1.9"\n')  # fmt: skip
REMOTE_MICROBIT = MICROBIT  # behind ser2net: the same margin


def hil(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*HIL, *args], capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "COLUMNS": "220"})  # fmt: skip






@pytest.fixture
def tray(tmp_path):
    """Three QEMU micro:bits: one on its pty, one behind ser2net, one in a labgrid place."""
    with EmulatedDevice("microbit", log_dir=tmp_path / "emu") as a, \
            EmulatedDevice("microbit", log_dir=tmp_path / "emu") as b, \
            EmulatedDevice("microbit", log_dir=tmp_path / "emu") as c, \
            local_lab.Ser2net({"mb": b.port}) as s2n, \
            local_lab.LabgridCoordinator() as coordinator, \
            local_lab.LabgridExporter(coordinator.address, {"mb": c.port}) as exporter:  # fmt: skip
        coordinator.create_place("tray-mb", exporter.match("mb"))
        payload = tmp_path / "hil_tray.py"
        payload.write_text("".join(f"V{i} = {i * 7919}  # payload line\n" for i in range(120)))
        path = tmp_path / "lab-tray.toml"
        files = f'files = ["hil_info.py", "hil_fs.py", "{payload}"]\n'
        path.write_text(
            f'[lab]\nname = "tray"\ncoordinator = "{coordinator.address}"\n'
            f'[[device]]\nname = "mb-serial"\nport = "{a.port}"\n{files}{MICROBIT}'
            f'[[device]]\nname = "mb-rfc2217"\nport = "{s2n.url("mb")}"\n{files}{REMOTE_MICROBIT}'
            f'[[device]]\nname = "mb-labgrid"\nport = "labgrid:tray-mb"\n{files}{REMOTE_MICROBIT}'
        )
        yield path, coordinator


def test_smoke_a_tray_through_serial_rfc2217_and_labgrid(no_leftovers, no_stray_helpers, tray, tmp_path):
    lab_path, coordinator = tray
    out_dir = tmp_path / "out"
    done = hil("smoke", "--lab", str(lab_path), "--out", str(out_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["device"]: r for r in json.loads((out_dir / "smoke.json").read_text())}
    assert set(results) == {"mb-serial", "mb-rfc2217", "mb-labgrid"}
    for name, r in results.items():
        assert r["verdict"] == "PASS", (name, r["problem"])
        assert re.search(rf"│ {name}\s+│ \S+\s+│ PASS", done.stdout), done.stdout  # the verdict table
        assert r["micropython"] == "1.9.2" and r["banner"].startswith("MicroPython v1.9.2")
        assert r["passed"] >= 12 and r["failed"] == r["errors"] == 0
        files = r["flash"]["files"]
        assert [f["name"] for f in files] == ["hil_info.py", "hil_fs.py", "hil_tray.py"]
        assert files[2]["written"] and files[2]["digest"].startswith("crc32:")
        junit = Path(r["junit"]).read_text()
        assert 'failures="0"' in junit and 'errors="0"' in junit
    assert results["mb-serial"]["port"].startswith("/dev/pts/")
    assert results["mb-rfc2217"]["port"].startswith("rfc2217://127.0.0.1:")
    assert results["mb-labgrid"]["port"].startswith("rfc2217://127.0.0.1:")  # labgrid's ser2net for the place
    assert coordinator.acquired_by("tray-mb") is None  # the place went back after the run
    for name in ("mb-serial", "mb-rfc2217", "mb-labgrid"):  # progress lines end with each verdict
        assert re.search(rf"{name}\s+PASS", done.stderr), done.stderr


def test_flash_gives_one_verdict_per_device_even_when_one_is_missing(no_leftovers, tmp_path):
    with EmulatedDevice("microbit", log_dir=tmp_path / "emu") as a:
        path = tmp_path / "lab-two.toml"
        path.write_text(f'[[device]]\nname = "here"\nport = "{a.port}"\n{MICROBIT}'
                        f'[[device]]\nname = "gone"\nport = "/dev/ttyHILNOPE"\n{MICROBIT}')  # fmt: skip
        done = hil("flash", "--lab", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    results = {r["device"]: r for r in json.loads((tmp_path / "out" / "flash.json").read_text())}
    assert results["here"]["verdict"] == "PASS" and results["here"]["flash"]["files"]
    assert results["gone"]["verdict"] == "ERROR" and results["gone"]["flash"] is None
    assert results["gone"]["problem"].endswith(
        "lab-two.toml: device 'gone': serial port /dev/ttyHILNOPE does not exist: check the cable or fix its 'port'")
    assert re.search(r"│ gone\s+│ /dev/ttyHILNOPE\s+│ ERROR", done.stdout), done.stdout
    assert (tmp_path / "out" / "logs" / "here.console.log").exists()
