"""`hil devices`, `hil flash`, `hil smoke` as a user runs them: real subprocesses on a tray of QEMU
micro:bits attached three ways at once — a plain serial port (its pty), ser2net/RFC 2217 on
loopback, and a labgrid place (coordinator + exporter on loopback)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from harness.cli.main import app
from harness.io import usb as usb_module
from tests.conftest import usb_port

HIL = [sys.executable, "-m", "harness.cli.main"]


def hil(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*HIL, *args], capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "COLUMNS": "220"})  # fmt: skip


def test_devices_lists_ports_and_which_lab_entries_they_are(tmp_path, monkeypatch):
    """Matching logic and the table, with pyserial port records as list_ports would return them."""
    path = tmp_path / "lab-bench.toml"
    path.write_text(textwrap.dedent("""\
        [lab]
        name = "bench"
        [[device]]
        name = "pico-1"
        match = { vid = "2e8a", pid = "0005", serial = "E661" }
        [[device]]
        name = "esp-1"
        match = { vid = "10c4", pid = "ea60" }
        can = { interface = "socketcan", channel = "can0" }
        [[device]]
        name = "far-1"
        port = "rfc2217://127.0.0.1:4001"
        """))
    ports = [usb_port("/dev/ttyACM7", 0x2E8A, 0x0005, "E661", "3-2:1.0"), usb_port("/dev/ttyS0", None, None)]
    monkeypatch.setattr(usb_module, "attached_ports", lambda: ports)
    monkeypatch.setenv("COLUMNS", "220")
    result = CliRunner().invoke(app, ["devices", "--lab", str(path)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    assert "2e8a:0005" in rows["/dev/ttyACM7"] and "pico-1 (bench)" in rows["/dev/ttyACM7"]
    assert "pico-1" not in rows["/dev/ttyS0"]
    assert "attached at /dev/ttyACM7" in rows["pico-1"]
    assert "not attached" in rows["esp-1"] and "socketcan:can0" in rows["esp-1"] and "can" in rows["esp-1"]
    assert "remote" in rows["far-1"]


def test_devices_mistakes_are_one_line(tmp_path):
    done = hil("devices", "--lab", "nope")
    assert done.returncode == 2
    assert re.fullmatch(r"hil: error: no lab named 'nope' in \S+ \(lab files: lab-example\)\n", done.stderr), \
        done.stderr
    bad = tmp_path / "lab-bad.toml"
    bad.write_text('[[device]]\nname = "x"\nport = "COM1"\n')
    done = hil("devices", "--lab", str(bad))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "lab-bad.toml: device 'x': key 'port': 'COM1' is not a port reference" in done.stderr


