"""Snapshot files without QEMU: which file a board's state is kept in (keyed by everything that
shapes the guest: a changed shape or QEMU version names another file, so a stale one is never
restored), and the QMP sequence save/restore send (a fake QMP stands in for the monitor)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.launch.qemu.snapshot import Snapshot, qemu_version


def fake_qemu(directory: Path, version: str) -> str:
    """A stand-in binary that prints a version line like qemu-system-* --version."""
    path = directory / f"fakeqemu-{version}"
    path.write_text(f"#!/bin/sh\necho 'QEMU emulator version {version}'\necho 'Copyright (c) 2003-2023'\n")
    path.chmod(0o755)
    return str(path)


class FakeQmp:
    def __init__(self, migrate_ok: bool = True) -> None:
        self.commands: list[tuple[str, dict]] = []
        self.migrate_ok = migrate_ok

    def cmd(self, name: str, /, **args) -> dict:
        self.commands.append((name, args))
        if name == "migrate":  # QEMU runs the exec: command; here the file is written directly
            target = Path(shlex.split(args["uri"].removeprefix("exec:"))[-1])
            target.write_bytes(b"QEVM state")
        return {}

    def wait_migration(self, timeout: float) -> None:
        self.commands.append(("wait", {}))
        if not self.migrate_ok:
            raise InfrastructureError("QEMU migration failed")


@pytest.fixture
def snapdir(tmp_path, monkeypatch):
    directory = tmp_path / "snaps"
    monkeypatch.setenv("HIL_SNAPSHOTS", str(directory))
    return directory


def test_path_is_keyed_by_board_qemu_version_and_shape(tmp_path, snapdir):
    qemu8, qemu9 = fake_qemu(tmp_path, "8.2.0"), fake_qemu(tmp_path, "9.0.0")
    assert qemu_version(qemu8) == "QEMU emulator version 8.2.0"
    shape = ["-M", "microbit", "digest:abc", "net:user"]
    snap = Snapshot.for_config("microbit", qemu8, shape)
    assert snapdir.is_dir() and snap.path.parent == snapdir
    assert re.fullmatch(r"microbit-[0-9a-f]{16}\.vmstate", snap.path.name)
    assert Snapshot.for_config("microbit", qemu8, list(shape)).path == snap.path  # same shape: same file
    others = {
        Snapshot.for_config("microbit", qemu8, [*shape[:-1], "net:tap"]).path,  # guest network changed
        Snapshot.for_config("microbit", qemu8, ["-M", "microbit", "digest:abd", "net:user"]).path,  # new image
        Snapshot.for_config("microbit", qemu9, shape).path,  # another QEMU: its state format may differ
        Snapshot.for_config("microbit2", qemu8, shape).path,
        Snapshot.for_config("microbit", qemu8, ["-Mmicrobit", "digest:abc", "net:user"]).path,  # joined != split
    }
    assert snap.path not in others and len(others) == 5


def test_stale_shape_finds_no_snapshot_to_restore(tmp_path, snapdir):
    qemu = fake_qemu(tmp_path, "8.2.0")
    saved = Snapshot.for_config("b", qemu, ["digest:old"])
    saved.save(FakeQmp())  # type: ignore[arg-type]
    assert saved.exists
    assert not Snapshot.for_config("b", qemu, ["digest:new"]).exists  # rebuilt image: cold boot
    assert Snapshot.for_config("b", qemu, ["digest:old"]).exists


def test_missing_binary_version_is_unknown_not_an_error(tmp_path):
    assert qemu_version(str(tmp_path / "no-such-qemu")) == "unknown"


def test_save_pauses_streams_renames_and_resumes(tmp_path):
    snap = Snapshot(tmp_path / "dir with space" / "b-1.vmstate")
    snap.path.parent.mkdir()
    qmp = FakeQmp()
    snap.save(qmp)  # type: ignore[arg-type]
    names = [name for name, _ in qmp.commands]
    assert names == ["stop", "migrate", "wait", "cont"]
    uri = qmp.commands[1][1]["uri"]
    assert uri.startswith("exec:cat > ") and shlex.split(uri[5:])[-1].startswith(str(snap.path.with_suffix(".tmp")))
    assert snap.path.read_bytes() == b"QEVM state"
    assert list(snap.path.parent.iterdir()) == [snap.path]  # the temporary file is gone


def test_failed_save_leaves_no_file_and_still_resumes(tmp_path):
    snap = Snapshot(tmp_path / "b-2.vmstate")
    qmp = FakeQmp(migrate_ok=False)
    with pytest.raises(InfrastructureError, match="migration failed"):
        snap.save(qmp)  # type: ignore[arg-type]
    assert [name for name, _ in qmp.commands] == ["stop", "migrate", "wait", "cont"]  # the board runs on
    assert not snap.exists and list(tmp_path.iterdir()) == []  # a half-written file never counts


def test_restore_and_discard(tmp_path):
    snap = Snapshot(tmp_path / "it's here" / "b-3.vmstate")
    snap.path.parent.mkdir()
    snap.path.write_bytes(b"QEVM")
    qmp = FakeQmp()
    snap.restore(qmp)  # type: ignore[arg-type]
    assert qmp.commands == [("migrate-incoming", {"uri": f"exec:cat {shlex.quote(str(snap.path))}"}),
                            ("wait", {}), ("cont", {})]  # fmt: skip
    snap.discard()
    assert not snap.exists
    snap.discard()  # already gone: fine
