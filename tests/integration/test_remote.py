"""Remote devices, all real processes on loopback: a QEMU micro:bit's pty exported by ser2net
(RFC 2217) and by a labgrid coordinator + exporter, flashed and smoke-tested through them; the
RFC 2217 link surviving a dropped connection; labgrid places always given back."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from harness.board import Board
from harness.config.labs import board_spec, load_lab
from harness.errors import BoardDied, InfrastructureError
from harness.flash.fs import FsFlasher
from harness.io import labgrid, rfc2217
from harness.lab.pool import DeviceLock
from harness.lab.tray import Reporter, open_board, smoke_device
from harness.testing import remote as local_lab
from harness.testing.emulated import EmulatedDevice

# pyserial 3.5's RFC 2217 client uses Thread.setDaemon/setName
pytestmark = pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")
# The micro:bit's UART keeps 63 bytes and drops the rest; behind ser2net, network and scheduling delays
# can merge its paced chunks, so remote micro:bits get more margin than the local 32 B / 2 ms.
MICROBIT = 'console = { write_chunk = 16, write_gap_ms = 4, raw_paste = false }\ncapabilities = { fs = true }'






def wait_until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


@pytest.fixture
def microbit_device(tmp_path):
    with EmulatedDevice("microbit", log_dir=tmp_path / "emulator") as device:
        yield device


def device_lab(tmp_path: Path, port: str, extra: str = "", name: str = "mb"):
    """A lab with one device on ``port``, flashing firmware_py's files plus a fresh file (so bytes move)."""
    payload = tmp_path / "hil_payload.py"
    payload.write_text(f"DATA = {bytes(range(256))!r}\n" * 4)
    path = tmp_path / "lab-remote.toml"
    path.write_text(textwrap.dedent(f"""\
        [lab]
        name = "remote"
        {extra}
        [[device]]
        name = "{name}"
        port = "{port}"
        files = ["hil_info.py", "hil_fs.py", "{payload}"]
        expect_version = "1.9.2"
        """) + MICROBIT + "\n")
    return load_lab(path)




# --- ser2net / RFC 2217 -----------------------------------------------------------------------------------------
@pytest.fixture
def ser2net(microbit_device):
    with local_lab.Ser2net({"mb": microbit_device.port}) as s2n:
        yield s2n


class Phases(Reporter):
    def __init__(self, on_phase=None) -> None:
        self.seen: list[str] = []
        self.on_phase = on_phase

    def phase(self, device: str, text: str) -> None:
        self.seen.append(text)
        if self.on_phase:
            self.on_phase(text)


def test_flash_and_smoke_through_ser2net(no_leftovers, no_stray_helpers, ser2net, tmp_path):
    url = ser2net.url("mb")
    assert url.startswith("rfc2217://127.0.0.1:")
    lab = device_lab(tmp_path, url)
    result = smoke_device(lab, lab.devices[0], tmp_path / "out", Phases())
    assert result.verdict == "PASS", result.problem
    assert result.port == url and result.version == "1.9.2"
    assert result.flash.bytes_written == sum(f.size for f in result.flash.files if f.written) > 1000
    assert all(f.digest.startswith("crc32:") for f in result.flash.files)
    assert result.passed >= 12 and result.failed == result.errors == 0


def test_rfc2217_link_survives_a_dropped_connection(no_leftovers, no_stray_helpers, ser2net, tmp_path):
    lab = device_lab(tmp_path, ser2net.url("mb"))
    board = open_board(lab.devices[0], ser2net.url("mb"), tmp_path)
    try:
        transport = board.console.transport.inner  # inside the evidence journal's recorder
        assert isinstance(transport, rfc2217.Rfc2217Transport) and transport.connected
        blob = bytes(range(256)) * 8
        report = FsFlasher(board).flash([("blob.bin", blob)], force=True)
        assert report.files[0].digest == f"crc32:{zlib.crc32(blob):08x}"
        print(f"\nfs flash over RFC 2217 (micro:bit via ser2net): {report.throughput / 1024:.1f} KiB/s")
        # The board answers; the answer sits, unread, in the client's buffer when the link drops.
        board.console.send(b"print('hil-before-drop', 6 * 7)\x04")
        wait_until(lambda: transport.port.in_waiting >= len(b"OKhil-before-drop 42\r\n\x04\x04>"), "answer")
        ser2net.restart()  # the lab host's ser2net goes away and comes back on the same port
        wait_until(lambda: not transport.connected, "server close seen")
        assert b"hil-before-drop 42" in board.console.expect_bytes(b"\x04>", 10, "answer from before the drop")
        assert board.exec("print('after', 1 + 1)") == "after 2\n"
        assert transport.reconnects == 1 and "reconnected after" in transport.events[-1]
    finally:
        board.stop()
    log = board.console_log.read_text(errors="replace")
    assert log.index("hil-before-drop 42") < log.index("connection lost") < log.index("after 2")
    assert "reconnected after" in log


def test_a_link_that_stays_down_is_one_line_board_died(no_leftovers, no_stray_helpers, ser2net):
    transport = rfc2217.Rfc2217Transport(ser2net.url("mb"), reconnect_timeout=1.0)
    try:
        ser2net.stop()
        with pytest.raises(BoardDied) as info:
            for _ in range(100):  # the server's close is seen on a read or the next write
                transport.write(b"\r")
                transport.read(100, 0.05)
        message = str(info.value)
        assert "connection lost" in message and "not back within 1 s" in message
        assert message.endswith("is ser2net / the lab host running?") and "\n" not in message
        assert "no reconnect within 1 s" in transport.events[-1]
    finally:
        transport.close()




# --- labgrid ----------------------------------------------------------------------------------------------------
@pytest.fixture
def labgrid_lab(microbit_device):
    """A real labgrid coordinator and exporter on loopback, the micro:bit's pty as a place."""
    with local_lab.LabgridCoordinator() as coordinator, \
            local_lab.LabgridExporter(coordinator.address, {"mb": microbit_device.port}) as exporter:  # fmt: skip
        coordinator.create_place("hil-mb", exporter.match("mb"))
        yield coordinator


def test_flash_and_smoke_through_a_labgrid_place(no_leftovers, no_stray_helpers, labgrid_lab, tmp_path):
    holders = []
    lab = device_lab(tmp_path, "labgrid:hil-mb", extra=f'coordinator = "{labgrid_lab.address}"')
    assert lab.devices[0].port == f"labgrid://{labgrid_lab.address}/hil-mb"
    reporter = Phases(lambda text: text.startswith("running") and holders.append(labgrid_lab.acquired_by("hil-mb")))
    result = smoke_device(lab, lab.devices[0], tmp_path / "out", reporter)
    assert result.verdict == "PASS", result.problem
    assert result.port.startswith("rfc2217://127.0.0.1:")  # labgrid's ser2net for the place
    assert result.flash.bytes_written > 1000 and result.passed >= 12
    print(f"\nfs flash + verify through labgrid (ser2net RFC 2217): {result.flash.throughput / 1024:.1f} KiB/s")
    assert holders and holders[0] is not None  # held while the suite ran...
    assert labgrid_lab.acquired_by("hil-mb") is None  # ...and given back


def test_labgrid_place_is_released_on_errors_and_at_exit(no_leftovers, no_stray_helpers, labgrid_lab, tmp_path):
    address = labgrid_lab.address
    with pytest.raises(RuntimeError), labgrid.LabgridPlace("hil-mb", address) as place:
        assert place.url.startswith("rfc2217://") and labgrid_lab.acquired_by("hil-mb")
        raise RuntimeError("test crashed while holding the place")
    assert labgrid_lab.acquired_by("hil-mb") is None
    # a process that dies of an uncaught exception still gives the place back (atexit)
    script = (f"from harness.io.labgrid import LabgridPlace\nLabgridPlace('hil-mb', '{address}').acquire()\n"
              "raise SystemExit('crash')\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "crash" in done.stderr
    assert labgrid_lab.acquired_by("hil-mb") is None
    # ... and so does one stopped by SIGTERM (a cancelled CI job), which still dies of the signal
    script = (f"import os, signal\nfrom harness.io.labgrid import LabgridPlace\n"
              f"LabgridPlace('hil-mb', '{address}').acquire()\nos.kill(os.getpid(), signal.SIGTERM)\n"
              "import time\ntime.sleep(60)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert labgrid_lab.acquired_by("hil-mb") is None


def test_labgrid_place_held_by_someone_else(no_leftovers, no_stray_helpers, labgrid_lab, monkeypatch):
    monkeypatch.setenv("LG_USERNAME", "alice")
    labgrid.labgrid_client(labgrid_lab.address, "-p", "hil-mb", "acquire")
    monkeypatch.delenv("LG_USERNAME")
    with pytest.raises(InfrastructureError) as info:
        labgrid.LabgridPlace("hil-mb", labgrid_lab.address).acquire()
    message = str(info.value)
    assert message.startswith("labgrid place 'hil-mb': Place hil-mb is already acquired by ") and "alice" in message
    assert "\n" not in message
    monkeypatch.setenv("LG_USERNAME", "alice")
    labgrid.labgrid_client(labgrid_lab.address, "-p", "hil-mb", "release")


def test_a_board_target_on_a_labgrid_place(no_leftovers, no_stray_helpers, labgrid_lab, tmp_path):
    lab = device_lab(tmp_path, "/dev/null")
    spec = board_spec(lab.devices[0], f"labgrid://{labgrid_lab.address}/hil-mb")
    with Board(spec, log_dir=tmp_path) as board:
        assert board.exec("print('via labgrid')") == "via labgrid\n"
        assert labgrid_lab.acquired_by("hil-mb") is not None
    assert labgrid_lab.acquired_by("hil-mb") is None




def test_a_run_on_a_labgrid_target_and_hil_smoke_take_one_lock(no_leftovers, no_stray_helpers, labgrid_lab,
                                                                tmp_path, monkeypatch):  # fmt: skip
    """labgrid lets one user on one host use a place they hold, so only our device lock keeps a
    pytest run (which locks its target's labgrid:PLACE) and `hil smoke` on the lab device apart."""
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    run = DeviceLock(f"labgrid://{labgrid_lab.address}/hil-mb", "microbit", purpose="pytest")
    assert run.try_acquire()
    try:
        lab = device_lab(tmp_path, "labgrid:hil-mb", extra=f'coordinator = "{labgrid_lab.address}"')
        result = smoke_device(lab, lab.devices[0], tmp_path / "out", Phases(lambda text: None), lock_timeout=0.5)
        assert result.verdict == "ERROR" and "held by pid" in result.problem, result.problem
        assert labgrid_lab.acquired_by("hil-mb") is None  # refused before the place was taken
    finally:
        run.release()
