"""QemuLauncher's per-test packet captures against a fake QMP (no QEMU): a capture belongs to the
QEMU it was added to, so a board restarted mid-test (a new QEMU, often a new launcher) must not
have it deleted there: the real QEMU answers "object 'hilcapN' not found"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.config.boards import load_board
from harness.errors import InfrastructureError
from harness.images import Image
from harness.launch.base import LaunchContext
from harness.launch.qemu.launcher import QemuLauncher
from harness.net.boardnet import BoardNet
from harness.pytest import fixtures
from tests.conftest import write_target


class FakeProc:
    def poll(self) -> int | None:
        return None


class FakeQemu:
    """What QMP sees of one QEMU: its objects, and the commands sent to it."""

    def __init__(self) -> None:
        self.objects: set[str] = set()
        self.commands: list[tuple[str, str]] = []

    def cmd(self, name: str, **args) -> dict:
        self.commands.append((name, args["id"]))
        if name == "object-add":
            self.objects.add(args["id"])
        elif name == "object-del":
            if args["id"] not in self.objects:  # QEMU's own words
                raise InfrastructureError(f"QMP object-del failed: object '{args['id']}' not found")
            self.objects.remove(args["id"])
        return {}


@pytest.fixture
def spec(tmp_path):
    return load_board(write_target(tmp_path, "q", '[launch]\nkind = "qemu"\nmachine = "mps2-an385"\n'
                                   '[network]\nmode = "user"\nnic = "board"\ndevice = "lan9118"\nconfigure = "repl"\n'))


def running(spec, tmp_path: Path) -> QemuLauncher:
    """A launcher as start() leaves it, with a fake QEMU behind it."""
    launcher = QemuLauncher(spec, LaunchContext(Image(digest="d", files={}), tmp_path, tmp_path))
    launcher.net = BoardNet(mode="user", guest_ip="10.0.2.15", host_ip="10.0.2.2")
    launcher.proc, launcher.qmp = FakeProc(), FakeQemu()  # type: ignore[assignment]
    return launcher


def test_capture_is_added_and_deleted_on_the_same_qemu(spec, tmp_path):
    launcher = running(spec, tmp_path)
    ident = launcher.start_capture(tmp_path / "a.pcap")
    assert ident == "hilcap1" and launcher.qmp.objects == {"hilcap1"}
    launcher.stop_capture(ident)
    assert launcher.qmp.commands == [("object-add", "hilcap1"), ("object-del", "hilcap1")]
    assert launcher.qmp.objects == set()


def test_capture_ends_with_the_qemu_it_was_started_on(spec, tmp_path):
    launcher = running(spec, tmp_path)
    ident = launcher.start_capture(tmp_path / "a.pcap")
    launcher.proc, launcher.qmp = FakeProc(), FakeQemu()  # type: ignore[assignment]  # QEMU started again
    launcher.stop_capture(ident)
    assert launcher.qmp.commands == []  # nothing sent to the new QEMU
    second = launcher.start_capture(tmp_path / "b.pcap")  # the new QEMU's captures work as usual
    launcher.stop_capture(second)
    assert launcher.qmp.commands == [("object-add", second), ("object-del", second)]


def test_restarted_board_does_not_delete_the_old_capture(spec, tmp_path):
    """Board.restart makes a new launcher; the dut fixture then stops the test's capture on it."""
    old = running(spec, tmp_path)
    ident, path = old.start_capture(tmp_path / "a.pcap"), tmp_path / "a.pcap"
    path.write_bytes(b"pcap")  # what QEMU wrote before it went away
    new = running(spec, tmp_path)  # its captures count from hilcap1 again
    board = SimpleNamespace(launcher=new)
    item = SimpleNamespace(user_properties=[])
    fixtures._stop_capture(board, item, ident, path)  # type: ignore[arg-type]
    assert new.qmp.commands == []
    assert item.user_properties == [("pcap", str(path))]  # the old QEMU's capture is still reported
    mine = new.start_capture(tmp_path / "b.pcap")
    assert mine == ident  # same name, other QEMU: this one is deleted normally
    new.stop_capture(mine)
    assert new.qmp.commands == [("object-add", mine), ("object-del", mine)]


def test_capture_not_stopped_on_a_dead_qemu(spec, tmp_path):
    launcher = running(spec, tmp_path)
    ident = launcher.start_capture(tmp_path / "a.pcap")
    launcher.proc = SimpleNamespace(poll=lambda: -9)  # type: ignore[assignment]
    launcher.stop_capture(ident)
    assert launcher.qmp.commands == [("object-add", "hilcap1")]


# --- snapshot fallback: counted and reported, not only logged -----------------------------------------

@pytest.fixture
def snapshot_board(tmp_path, monkeypatch):
    """A QEMU board with snapshots on whose QEMU is faked: _start only restores (or boots)."""
    import sys

    from harness.launch.qemu.snapshot import Snapshot

    monkeypatch.setenv("HIL_SNAPSHOTS", str(tmp_path / "snaps"))
    spec = load_board(write_target(tmp_path, "snappy", f'[launch]\nkind = "qemu"\nbinary = "{sys.executable}"\n'
                                   'machine = "q35"\n[snapshot]\nenabled = true\n'))
    starts: list[bool] = []

    def fake_start(self, incoming: bool):
        starts.append(incoming)
        self.restored = False
        if incoming:
            self.snapshot.restore(FakeQemu())
            self.restored = True
        return "transport"

    monkeypatch.setattr(QemuLauncher, "_start", fake_start)
    monkeypatch.setattr(QemuLauncher, "_kill", lambda self: None)
    launcher = QemuLauncher(spec, LaunchContext(Image(digest="d", files={}), tmp_path, tmp_path, log=lambda m: None))
    snapshot = Snapshot.for_config(spec.name, sys.executable, launcher.snapshot_shape())
    return spec, launcher, snapshot, starts


def test_snapshot_that_fails_to_restore_boots_cold_and_says_why(snapshot_board, monkeypatch, tmp_path):
    from harness.board import Board
    from harness.launch.qemu.snapshot import Snapshot

    spec, launcher, snapshot, starts = snapshot_board
    snapshot.path.write_bytes(b"not a QEMU migration stream")

    def broken(self, qmp, timeout=60.0):
        raise InfrastructureError("QMP migrate-incoming failed: QEMU disconnected (EOFError: )")

    monkeypatch.setattr(Snapshot, "restore", broken)
    assert launcher.start() == "transport"
    assert starts == [True, False]  # tried the snapshot, then booted cold
    assert not launcher.restored and launcher.snapshot_fallback
    assert launcher.boot_note == ("snapshot restore failed: QMP migrate-incoming failed: QEMU disconnected "
                                  "(EOFError: ); cold boot")
    assert not snapshot.exists  # discarded: the cold boot saves a new one at the prompt

    board = Board(spec, log_dir=tmp_path, log=lambda m: None)
    try:
        board._note_boot_kind(launcher)
        assert (board.facts.boot_kind, board.facts.boot_note) == ("cold", launcher.boot_note)
        assert board.facts.snapshot_fallbacks == 1 and board.facts.extra["started_from"] == "cold boot"
        props = fixtures.board_properties(board)
        assert props["boot_kind"] == "cold" and props["snapshot_fallbacks"] == "1"
        assert props["boot_note"].startswith("snapshot restore failed: QMP migrate-incoming failed")
        # the next start restores again: kind "restored", the count of fallbacks stays
        monkeypatch.setattr(Snapshot, "restore", lambda self, qmp, timeout=60.0: None)
        snapshot.path.write_bytes(b"QEVM")
        launcher.start()
        board._note_boot_kind(launcher)
        assert (board.facts.boot_kind, board.facts.boot_note, board.facts.snapshot_fallbacks) == ("restored", "", 1)
    finally:
        board.stop()


def test_first_boot_without_a_snapshot_says_so(snapshot_board):
    _spec, launcher, snapshot, starts = snapshot_board
    assert not snapshot.exists
    launcher.start()
    assert starts == [False] and not launcher.snapshot_fallback
    assert launcher.boot_note == "no snapshot yet; cold boot (saves one at the prompt)"


# --- the console: a pty the harness makes, handed to QEMU as serial0 ----------------------------------

def test_console_pty_is_serial0_before_the_can_link(spec, tmp_path):
    from harness.launch.qemu.hostpty import HostPty

    launcher = QemuLauncher(spec, LaunchContext(Image(digest="d", files={}), tmp_path, tmp_path))
    launcher.console_pty = HostPty.open()
    can_args = ["-serial", "tcp:127.0.0.1:1,server=on,wait=off"]
    launcher.can = SimpleNamespace(qemu_args=lambda: can_args, kernel_params=lambda: [])  # type: ignore[assignment]
    try:
        cmd = launcher.command()
        serials = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-serial"]
        assert serials == ["chardev:hilcon", "tcp:127.0.0.1:1,server=on,wait=off"]  # console first: serial0
        assert f"fd={launcher.console_pty.master},set=1,opaque=hil-console" in cmd
        assert "serial,id=hilcon,path=/dev/fdset/1" in cmd
        assert "pty" not in serials  # never QEMU's own pty chardev (its reader shows up on a 1 s timer)
    finally:
        launcher.console_pty.close()
