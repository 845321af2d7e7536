"""Device locks and leases: one device, one user at a time, across workers, processes and crashes.

The end-to-end test exports a real QEMU micro:bit's console pty as a serial target (exactly how
a /dev/ttyACM0 board is reached) and points two pytest processes at it."""

from __future__ import annotations

import os

import pytest

from harness.errors import ConfigError, InfrastructureError
from harness.lab.pool import BoardPool, DeviceBusy, DeviceLock, candidates
from tests.conftest import write_target


def test_lock_names_its_holder_and_is_released(tmp_path):
    port = tmp_path / "ttyFAKE0"
    port.touch()
    mine = DeviceLock(str(port), "bench-1", tmp_path / "locks")
    assert mine.try_acquire()
    other = DeviceLock(str(port), "bench-1", tmp_path / "locks")  # a second open file: another claimant
    assert not other.try_acquire()
    waited = []
    with pytest.raises(DeviceBusy) as info:
        other.acquire(timeout=0.3, log=waited.append)
    message = str(info.value)
    assert f"device {port} (board bench-1) is held by pid {os.getpid()}" in message
    assert "on host" in message and "since" in message and "--hil-lock-timeout" in message
    assert waited and "waiting up to 0.3 s" in waited[0]
    mine.release()
    assert mine.path.read_text() == ""  # released: no stale holder left in the file
    assert other.try_acquire()
    other.release()


def test_two_names_of_one_device_share_a_lock(tmp_path):
    device = tmp_path / "ttyACM0"
    device.touch()
    alias = tmp_path / "usb-Espressif-if00"
    alias.symlink_to(device)  # like /dev/serial/by-id/... -> /dev/ttyACM0
    a = DeviceLock(str(device), "x", tmp_path / "locks")
    b = DeviceLock(str(alias), "x", tmp_path / "locks")
    assert a.path == b.path
    assert a.try_acquire() and not b.try_acquire()
    a.release()


def test_lock_dir_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lock = DeviceLock("/dev/ttyX", "x", blocker / "locks")
    with pytest.raises(InfrastructureError) as info:
        lock.try_acquire()
    assert str(info.value).startswith(f"cannot create lock directory {blocker / 'locks'}")
    assert "set HIL_LOCK_DIR" in str(info.value) and "\n" not in str(info.value)


class _RecordingBoard:
    """Stands in for harness.board.Board in this unit test of lease selection only."""

    def __init__(self, spec, **kwargs) -> None:
        self.spec, self.name = spec, spec.name
        self.stopped = False

    def start(self):
        return self

    def stop(self) -> None:
        self.stopped = True


def test_lease_by_tag_takes_a_free_device(tmp_path, monkeypatch):
    targets = tmp_path / "targets"
    targets.mkdir()
    for name in ("bench1", "bench2"):
        (tmp_path / f"tty-{name}").touch()
        write_target(targets, name, f'arch = "esp32"\n[launch]\nkind = "serial"\nport = "{tmp_path}/tty-{name}"\n')
    write_target(targets, "other", f'[launch]\nkind = "serial"\nport = "{tmp_path}/tty-other"\n')
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    assert sorted(s.name for s in candidates("tag:esp32")) == ["bench1", "bench2"]
    with pytest.raises(ConfigError, match="no target file has tag 'nope'"):
        candidates("tag:nope")

    locks = tmp_path / "locks"
    someone_else = DeviceLock(f"{tmp_path}/tty-bench1", "bench1", locks)
    assert someone_else.try_acquire()
    pool = BoardPool(tmp_path / "logs", lock_timeout=0.3, lock_directory=locks, board_factory=_RecordingBoard)
    board = pool.get("tag:esp32")
    assert board.name == "bench2"  # bench1 is busy: the free one is leased
    assert not DeviceLock(f"{tmp_path}/tty-bench2", "bench2", locks).try_acquire()
    second = BoardPool(tmp_path / "logs", lock_timeout=0.3, lock_directory=locks, board_factory=_RecordingBoard)
    with pytest.raises(DeviceBusy, match="every matching device is busy"):
        second.get("tag:esp32")
    with pytest.raises(DeviceBusy):  # remembered: later tests do not wait again
        second.get("tag:esp32")
    pool.release("tag:esp32")
    assert board.stopped
    assert DeviceLock(f"{tmp_path}/tty-bench2", "bench2", locks).try_acquire()
    someone_else.release()












def test_tags_and_lab_devices_select_boards(tmp_path, monkeypatch):
    """`[board] tags` and a lab device's tags are what tag:NAME matches; a pool given lab devices
    (pytest --hil-lab) leases them by name or tag like target files."""
    from harness.config.labs import lab_boards

    targets = tmp_path / "targets"
    targets.mkdir()
    (tmp_path / "tty-t1").touch()
    (tmp_path / "tty-d1").touch()
    write_target(targets, "t1", f'tags = ["rp2040"]\n[launch]\nkind = "serial"\nport = "{tmp_path}/tty-t1"\n')
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    lab = tmp_path / "lab-x.toml"
    lab.write_text('[lab]\nname = "x"\n[[device]]\nname = "d1"\nport = "/dev/nope"\ntags = ["rp2040", "mine"]\n')
    devices = lab_boards([lab], {"d1": f"{tmp_path}/tty-d1"})
    assert [s.name for s in candidates("tag:rp2040")] == ["t1"]
    assert [s.name for s in candidates("tag:rp2040", extra=devices)] == ["t1", "d1"]
    with pytest.raises(ConfigError, match="no target file has tag 'mine'"):
        candidates("tag:mine")

    locks = tmp_path / "locks"
    pool = BoardPool(tmp_path / "logs", lock_timeout=0.3, lock_directory=locks, board_factory=_RecordingBoard,
                     boards=devices)  # fmt: skip
    assert pool.get("tag:mine").name == "d1"
    pool.release("tag:mine")
    assert pool.get("d1").name == "d1" and pool.candidates("d1")[0].launch.port == f"{tmp_path}/tty-d1"
    pool.stop_all()


# --- a lock handed to a child process (hil smoke's suite pytest), and boards that cannot start -----
CHILD = """
import os, sys
sys.path.insert(0, {repo!r})
from harness.lab.pool import DeviceLock
lock = DeviceLock({port!r}, "bench-1", __import__("pathlib").Path({locks!r}))
print(lock.try_acquire(), lock.inherited, flush=True)
lock.release()  # the parent's lock: still held; adopted again by a later lease
print(lock.try_acquire(), lock.inherited, flush=True)
"""


def run_child(tmp_path, port, env, fds) -> list[str]:
    import subprocess
    import sys

    from tests.conftest import REPO

    code = CHILD.format(repo=str(REPO), port=str(port), locks=str(tmp_path / "locks"))
    done = subprocess.run([sys.executable, "-c", code], env=os.environ | env, pass_fds=fds, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:2]


def test_a_child_handed_the_lock_holds_it_without_waiting(tmp_path):
    """hil smoke holds the device and runs the suite in a child pytest: the child adopts the lock the
    parent hands it (it would otherwise wait for its own parent), and the device stays locked
    throughout: nobody else gets it in between, and the holder record stays the parent's."""
    from harness.lab.pool import handover

    port = tmp_path / "ttyACM0"
    port.touch()
    parent = DeviceLock(str(port), "bench-1", tmp_path / "locks", purpose="hil smoke")
    assert parent.try_acquire()
    env, fds = handover([parent])
    assert fds == (parent.fd,) and env == {"HIL_LOCK_FDS": str(parent.fd)}
    assert run_child(tmp_path, port, env, fds) == ["True True", "True True"]
    assert run_child(tmp_path, port, {}, ()) == ["False False", "False False"]  # not handed it: busy
    holder = parent.holder()
    assert holder.pid == os.getpid() and holder.purpose == "hil smoke"
    assert "(hil smoke on host " in parent.busy_message()
    assert not DeviceLock(str(port), "bench-1", tmp_path / "locks").try_acquire()
    parent.release()


def test_a_stray_inherited_descriptor_is_not_taken_for_the_lock(tmp_path, monkeypatch):
    """$HIL_LOCK_FDS leaks to grandchildren that do not have the descriptors: a number that is closed
    or open on another file is ignored, and the lock is taken (or waited for) as usual."""
    port = tmp_path / "ttyACM0"
    port.touch()
    other = os.open(tmp_path / "unrelated", os.O_RDWR | os.O_CREAT)
    try:
        monkeypatch.setenv("HIL_LOCK_FDS", f"{other},987654,junk")
        lock = DeviceLock(str(port), "bench-1", tmp_path / "locks")
        assert lock.try_acquire() and not lock.inherited and lock.fd != other
        assert not DeviceLock(str(port), "bench-1", tmp_path / "locks").try_acquire()
        lock.release()
    finally:
        os.close(other)


def test_a_missing_qemu_is_a_config_error_naming_file_and_key_and_not_booted_again(tmp_path, monkeypatch):
    """A board whose launch.binary is not installed: a ConfigError (the plugin does not retry those)
    naming the file, key and fix, before anything is built or started; later tests get it at once."""
    targets = tmp_path / "targets"
    targets.mkdir()
    path = write_target(targets, "nope", '[launch]\nmachine = "microbit"\nbinary = "qemu-system-hilnope"\n')
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    made = []
    pool = BoardPool(tmp_path / "logs", board_factory=lambda spec, **kw: made.append(spec))
    for _ in range(2):
        with pytest.raises(ConfigError) as info:
            pool.get("nope")
        assert str(info.value) == (f"{path}: key 'launch.binary' is 'qemu-system-hilnope', which is not on PATH: "
                                   "install it or fix the path")  # fmt: skip
    assert made == []


def test_a_target_on_a_lab_port_locks_the_device_it_resolves_to(tmp_path, monkeypatch):
    """port = "lab:NAME" and `hil smoke` on that lab device open one device: they take one lock."""
    from harness.config.ports import parse_port
    from harness.lab import pool as pool_module

    tty = tmp_path / "ttyACM3"
    tty.touch()
    monkeypatch.setattr(pool_module, "resolve_lab_port", lambda ref: parse_port(str(tty)))
    assert pool_module.lock_port("lab:bench/pico") == str(tty)
    assert pool_module.lock_port("/dev/ttyUSB0") == "/dev/ttyUSB0"
    targets = tmp_path / "targets"
    targets.mkdir()
    write_target(targets, "via_lab", '[launch]\nkind = "serial"\nport = "lab:bench/pico"\n')
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    smoke = DeviceLock(str(tty), "pico", tmp_path / "locks", purpose="hil smoke")
    assert smoke.try_acquire()
    pool = BoardPool(tmp_path / "logs", lock_timeout=0.2, lock_directory=tmp_path / "locks",
                     board_factory=_RecordingBoard)  # fmt: skip
    with pytest.raises(DeviceBusy, match=r"is held by pid \d+ \(hil smoke on host"):
        pool.get("via_lab")
    smoke.release()


def test_a_labgrid_place_has_one_lock_however_it_is_written(tmp_path, monkeypatch):
    """The pool locks a target's ``labgrid:PLACE``; `hil smoke` locks the lab file's place before it
    acquires it. labgrid lets one user on one host use a place twice, so our lock must be the same
    one whichever form names the place (the short form takes $LG_COORDINATOR)."""
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:20408")
    names = {DeviceLock(port, "pico", tmp_path).path for port in
             ("labgrid:bench-pico", "labgrid://127.0.0.1:20408/bench-pico")}  # fmt: skip
    assert len(names) == 1
    assert DeviceLock("labgrid://127.0.0.1:20409/bench-pico", "pico", tmp_path).path not in names
    held = DeviceLock("labgrid:bench-pico", "pico", tmp_path, purpose="hil smoke")
    assert held.try_acquire()
    other = DeviceLock("labgrid://127.0.0.1:20408/bench-pico", "pico", tmp_path)
    assert not other.try_acquire()
    held.release()
