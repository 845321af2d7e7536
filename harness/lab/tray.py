"""A tray of devices at once: flash, reset, check banner and version, run the smoke suite, one
verdict per device. Devices run in parallel threads; each reports its phase and byte progress to
a ``Reporter`` (the CLI draws rich progress bars from it).

A device's port is resolved once per run (USB attributes -> /dev/tty*, or a labgrid place
acquired for the whole run and released at the end, also on errors) and every step uses it.

The device is locked (harness/lab/pool.py DeviceLock, the lock pytest runs take) for the whole run:
flash, banner check and suite. A device another run holds is waited for up to the lock timeout,
then reported busy naming its holder. The suite's child pytest is handed the lock (pool.handover)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness import procs
from harness.config.labs import DeviceSpec, Lab, board_spec
from harness.config.ports import parse_port
from harness.errors import HarnessError, one_line
from harness.flash import FlashError, FlashReport
from harness.io.labgrid import LabgridPlace
from harness.io.transport import PortError
from harness.io.usb import resolve_port
from harness.lab.pool import DeviceLock, handover
from harness.paths import resource

_BANNER = re.compile(r"MicroPython (v\d+\.\d+\S*|[0-9a-f]{7,}) on \d{4}-\d\d-\d\d")


class Reporter:
    """Progress sink: what each device is doing. The default prints nothing."""

    def phase(self, device: str, text: str) -> None: ...

    def progress(self, device: str, done: int, total: int) -> None: ...


@dataclass
class DeviceResult:
    name: str
    port: str = ""
    verdict: str = "ERROR"  # PASS | FAIL | ERROR
    flash: FlashReport | None = None
    banner: str = ""
    version: str = ""
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    problem: str = ""
    seconds: float = 0.0
    junit: Path | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def device_port(port: str) -> Iterator[str]:
    """The port to open for the whole run (``port`` resolved from the lab file); a labgrid place
    is held until the block ends."""
    if (ref := parse_port(port)).scheme == "labgrid":
        with LabgridPlace.from_port(ref) as place:  # the lab's coordinator was filled in at load
            yield place.url
    else:
        yield port


def open_board(device: DeviceSpec, port: str, log_dir: Path):
    from harness.board import Board

    try:
        return Board(board_spec(device, port), log_dir=log_dir, log=lambda m: None).start()
    except PortError as exc:  # the lab entry is what to fix, not the board type's target file
        fix = "fix its 'port'" if device.port else "fix its 'match'"
        raise exc.located(device.where, f"check the cable or {fix}") from None


def _port_back(device: DeviceSpec, port: str) -> Callable[[], bool]:
    def check() -> bool:
        if parse_port(port).is_network:
            return True
        try:
            return os.path.exists(resolve_port(device))
        except HarnessError:
            return False

    return check


def flash_device(device: DeviceSpec, port: str, log_dir: Path, reporter: Reporter, force: bool = False,
                 firmware_py: Path | None = None) -> FlashReport:  # fmt: skip
    """Write firmware (if the flasher has any) then the files, verifying each; soft-reset after."""
    from harness.flash import esptool, microbit, uf2
    from harness.flash.fs import FsFlasher, load_files

    name = device.name
    firmware_py = firmware_py or resource("firmware_py")
    report = FlashReport(device=name, method=device.flasher)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        reporter.progress(name, done, total)

    if device.flasher == "esptool":
        reporter.phase(name, "esptool: erase, write, verify")
        e = device.esptool
        plan = esptool.EsptoolPlan(
            port=port, image=device.firmware, chip=e.chip, baud=e.baud, erase=e.erase,
            offset=esptool.parse_offset(e.offset) if e.offset is not None else None,
        )  # fmt: skip
        report = esptool.flash(plan, name)
    elif device.flasher == "uf2":
        reporter.phase(name, "uf2: bootloader drive")

        def enter_bootloader() -> None:
            with contextlib.suppress(Exception):
                board = open_board(device, port, log_dir)
                try:
                    board.exec(uf2.BOOTLOADER_CODE, timeout=2)
                finally:
                    board.stop()

        def unique_id() -> str:
            board = open_board(device, resolve_port(device), log_dir)
            try:
                return board.exec(uf2.UNIQUE_ID_CODE).strip()
            finally:
                board.stop()

        flasher = uf2.Uf2Flasher(device.firmware, name, Path(device.drive) if device.drive else None)
        report = flasher.flash(enter_bootloader, _port_back(device, port), unique_id,
                               device.match.serial if device.match else None)  # fmt: skip
    elif device.flasher == "microbit_hex":
        reporter.phase(name, "hex: MICROBIT drive")
        flasher = microbit.MicrobitDriveFlasher(device.firmware, name, Path(device.drive) if device.drive else None)
        report, hex_files = flasher.flash()
        deadline = time.monotonic() + 30
        while not _port_back(device, port)() and time.monotonic() < deadline:
            time.sleep(0.2)
        board = open_board(device, port, log_dir)
        try:
            report.files = FsFlasher(board, chunk=device.chunk).verify(hex_files)
        finally:
            board.stop()
    if device.match is not None and device.flasher in ("uf2", "microbit_hex"):
        port = resolve_port(device)  # re-enumerated: the kernel may have handed out another tty
    if device.files and device.flasher != "none":
        files = load_files(device.files, firmware_py)
        reporter.phase(name, f"copying {len(files)} files")
        board = open_board(device, port, log_dir)
        try:
            fs_report = FsFlasher(board, chunk=device.chunk, progress=progress).flash(files, force=force)
            reporter.phase(name, "soft reset")
            board.soft_reset()
        finally:
            board.stop()
        report.files += fs_report.files
        report.bytes_written += fs_report.bytes_written
        report.method = fs_report.method if device.flasher == "fs" else f"{report.method} + fs"
    report.seconds = time.monotonic() - started
    return report


def _after_flash(device: DeviceSpec, port: str) -> str:
    """The port after flashing: a USB device that re-enumerated may have another tty now."""
    if device.match is not None and device.flasher in ("uf2", "microbit_hex"):
        return resolve_port(device)
    return port


def check_board(device: DeviceSpec, port: str, log_dir: Path, result: DeviceResult) -> None:
    """A fresh session (the board was soft-reset after flashing): banner and version."""
    board = open_board(device, port, log_dir)
    try:
        result.banner, result.version = board.facts.banner, board.facts.version
    finally:
        board.stop()
    if not _BANNER.search(result.banner):
        raise FlashError(f"{device.name}: no MicroPython banner after reset (got {result.banner!r})")
    want = device.expect_version
    if want and result.version.split(".")[: len(want.split("."))] != want.split("."):
        raise FlashError(f"{device.name}: board runs MicroPython {result.version}, the lab file expects {want}")


def run_suite(device: DeviceSpec, port: str, out_dir: Path, suite: Path, timeout: float, result: DeviceResult,
              locks: list[DeviceLock] | None = None) -> None:  # fmt: skip
    """The suite under pytest in a child process, ``--board`` this device: the lab file is handed to
    pytest as is (``--hil-lab``, it builds the device's board spec the same way) with the port
    already resolved here (``--hil-port``: a USB device's tty, a leased labgrid place's URL).
    ``locks``: the device locks this run holds, handed to the child (it must not wait for them)."""
    junit = out_dir / f"{device.name}.junit.xml"
    junit.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", str(suite), "--hil-lab", str(device.lab_path.resolve()),
            "--hil-port", f"{device.name}={port}", "--board", device.name,
            "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", f"--hil-logs={out_dir / 'logs'}",
            f"--rootdir={resource('suites').parent}"]  # fmt: skip
    with open(out_dir / f"{device.name}.pytest.log", "wb") as log:
        root = resource("suites").parent
        env, fds = handover(locks or [])
        proc = procs.spawn(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                           env=os.environ | env, pass_fds=fds)  # fmt: skip
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            procs.kill(proc)
            raise FlashError(f"{device.name}: the suite did not finish within {timeout:g} s") from None
        procs.forget(proc)
    result.junit = junit
    if not junit.exists():
        raise FlashError(f"{device.name}: pytest exited with status {status} and wrote no report; "
                         f"see {out_dir / (device.name + '.pytest.log')}")  # fmt: skip
    tally_junit(junit, result)
    if status not in (0, 1) and not result.errors:
        result.errors += 1
        result.problem = result.problem or f"pytest exited with status {status}"


def tally_junit(path: Path, result: DeviceResult) -> None:
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            result.passed += 1
        elif outcome.tag == "skipped":
            result.skipped += 1
        else:
            if outcome.tag == "failure":
                result.failed += 1
            else:
                result.errors += 1
            if not result.problem:
                result.problem = f"{case.get('name')}: {one_line(outcome.get('message') or outcome.text or '', 200)}"


DEFAULT_LOCK_TIMEOUT = 30.0


def smoke_device(lab: Lab, device: DeviceSpec, out_dir: Path, reporter: Reporter, *, flash: bool = True,
                 suite: Path | None = None, timeout: float = 600.0, force: bool = False,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> DeviceResult:  # fmt: skip
    """Flash (unless told not to), check banner and version, run the smoke suite: one verdict."""
    suite = suite or resource("suites") / "smoke"
    return _on_device(lab, device, out_dir, reporter, flash=flash and device.flasher != "none", force=force,
                      suite=suite, timeout=timeout, lock_timeout=lock_timeout, purpose="hil smoke")  # fmt: skip


def flash_only(lab: Lab, device: DeviceSpec, out_dir: Path, reporter: Reporter, *, force: bool = False,
               lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> DeviceResult:  # fmt: skip
    """Flash, then check banner and version: one verdict."""
    return _on_device(lab, device, out_dir, reporter, flash=True, force=force, lock_timeout=lock_timeout,
                      purpose="hil flash")  # fmt: skip


def lock_device(device: DeviceSpec, port: str, reporter: Reporter, result: DeviceResult, timeout: float,
                purpose: str, stack: contextlib.ExitStack) -> DeviceLock:  # fmt: skip
    """Take the lock of the device on ``port`` (waiting up to ``timeout`` s, saying for whom), held
    until ``stack`` closes. The wait is noted in the result; a device that stays busy is DeviceBusy."""

    def log(message: str) -> None:
        if "waiting" in message:
            holder = lock.holder()
            reporter.phase(device.name, f"waiting for pid {holder.pid}" if holder.pid else "waiting for the device")
        result.notes.append(message)

    lock = DeviceLock(port, device.name, purpose=purpose)
    lock.acquire(timeout, log, option="--lock-timeout")
    stack.callback(lock.release)
    return lock


def _on_device(lab: Lab, device: DeviceSpec, out_dir: Path, reporter: Reporter, *, flash: bool, force: bool,
               suite: Path | None = None, timeout: float = 600.0, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
               purpose: str = "hil") -> DeviceResult:  # fmt: skip
    result = DeviceResult(device.name)
    started = time.monotonic()
    try:
        reporter.phase(device.name, "resolving port")
        with contextlib.ExitStack() as held:
            # locked by what the lab file names (a labgrid place before it is acquired), then opened
            locks = [lock_device(device, resolve_port(device), reporter, result, lock_timeout, purpose, held)]
            port = result.port = held.enter_context(device_port(locks[0].port))
            if flash:
                result.flash = flash_device(device, port, out_dir / "logs", reporter, force)
                port = result.port = _after_flash(device, port)
                if locks[0].path != DeviceLock(port, device.name).path:  # re-enumerated as another tty
                    locks.append(lock_device(device, port, reporter, result, lock_timeout, purpose, held))
            reporter.phase(device.name, "banner and version")
            check_board(device, port, out_dir / "logs", result)
            if suite is not None:
                reporter.phase(device.name, f"running {suite.name}")
                run_suite(device, port, out_dir, suite, timeout, result, locks)
        result.verdict = "ERROR" if result.errors else "FAIL" if result.failed else "PASS"
    except HarnessError as exc:
        result.verdict, result.problem = "ERROR", one_line(exc)
    result.seconds = time.monotonic() - started
    reporter.phase(device.name, result.verdict)
    return result


def run_tray(work: list[tuple[Lab, DeviceSpec]], action: Callable[[Lab, DeviceSpec], DeviceResult],
             jobs: int = 0) -> list[DeviceResult]:  # fmt: skip
    """``action`` on every device, in parallel threads; results in the order given."""
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=jobs or len(work), thread_name_prefix="hil-tray") as pool:
        futures = [pool.submit(action, lab, device) for lab, device in work]
        results = []
        for (_, device), future in zip(work, futures, strict=True):
            try:
                results.append(future.result())
            except Exception as exc:  # a bug, not a device problem: still one verdict per device
                results.append(DeviceResult(device.name, verdict="ERROR", problem=f"internal error: {one_line(exc)}"))
        return results
