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
