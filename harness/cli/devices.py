"""`hil devices`, `hil flash`, `hil smoke`: real devices from lab files (targets/lab*.toml).

    hil devices                      # attached serial ports, which lab entries they are, entries not attached
    hil flash  [--lab X] [-d NAME]   # flash a tray of devices in parallel, each verified by read-back
    hil smoke  [--lab X] [-d NAME]   # flash, reset, banner + version, smoke suite: a verdict per device"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichConsole
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.config.labs import board_spec, default_port
from harness.config.ports import parse_port
from harness.lab.tray import DeviceResult, Reporter


def _consoles() -> tuple[RichConsole, RichConsole]:
    """stdout and stderr consoles; tables keep their columns in CI logs (not a terminal: $COLUMNS or 160)."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 160)
    return RichConsole(width=width), RichConsole(stderr=True, width=width)


COLORS = {"PASS": "green", "FAIL": "red", "ERROR": "magenta"}

LabOption = Annotated[
    str | None, typer.Option("--lab", help="lab file path or name (default: every targets/lab*.toml)")
]
DeviceOption = Annotated[list[str] | None, typer.Option("--device", "-d", help="device name (repeatable; default all)")]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", help="devices in parallel (0: all at once)")]
OutOption = Annotated[Path, typer.Option("--out", help="logs and reports go here")]
LockTimeoutOption = Annotated[float, typer.Option(
    "--lock-timeout", envvar="HIL_LOCK_TIMEOUT", metavar="S",
    help="wait up to S seconds for a device another run holds (a pytest run, another hil flash/smoke)")]


def devices(lab: LabOption = None) -> None:
    """Attached serial ports and the lab entries they match; lab entries with no attached port."""
    from harness.config.labs import find_labs
    from harness.io.usb import attached_ports

    out, _ = _consoles()
    labs = find_labs(lab)
    ports = attached_ports()
    entries = [(lb, d) for lb in labs for d in lb.devices]
    table = Table(title="attached serial ports")
    for col in ("port", "usb id", "serial number", "location", "description", "lab device"):
        table.add_column(col)
    for p in ports:
        usb = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else "-"
        names = [f"{d.name} ({lb.name})" for lb, d in entries if d.match is not None and d.match.matches(p)]
        names += [f"{d.name} ({lb.name})" for lb, d in entries if d.port and os.path.realpath(d.port) == p.device]
        table.add_row(p.device, usb, p.serial_number or "-", p.location or "-", p.description or "-",
                      ", ".join(names) or "[dim]-[/]")  # fmt: skip
    out.print(table)
    if not entries:
        out.print("no devices in the lab files" if labs else "no lab files (add targets/lab-NAME.toml)")
        return
    table = Table(title="lab devices")
    for col in ("device", "lab", "board", "flasher", "identity", "status", "capabilities", "can"):
        table.add_column(col)
    for lb, d in entries:
        spec = board_spec(d, default_port(lb, d))
        can = spec.can
        table.add_row(d.name, lb.name, d.board, d.flasher, d.identity(), _status(d, ports),
                      ", ".join(k for k, v in d.capabilities.items() if v is True) or "-",
                      f"{can.interface}:{can.channel}" if can.link == "python_can" else "-")  # fmt: skip
    out.print(table)


def _status(device, ports) -> str:
    if device.port and parse_port(device.port).scheme != "device":
        return "[cyan]remote[/]"
    if device.port:
        return "[green]attached[/]" if os.path.exists(device.port) else "[yellow]not attached[/]"
    found = [p.device for p in ports if device.match.matches(p)]
    if len(found) == 1:
        return f"[green]attached at {found[0]}[/]"
    if found:
        return f"[red]ambiguous: {', '.join(found)}[/]"
    return "[yellow]not attached[/]"


class RichReporter(Reporter):
    def __init__(self, progress: Progress, names: list[str]) -> None:
        self.bar = progress
        self.tasks = {name: progress.add_task(name, total=None, phase="waiting") for name in names}

    def phase(self, device: str, text: str) -> None:
        self.bar.update(self.tasks[device], phase=text)

    def progress(self, device: str, done: int, total: int) -> None:
        self.bar.update(self.tasks[device], completed=done, total=total or None)


def _run(action_name: str, lab, device, jobs, out_dir, action) -> list[DeviceResult]:
    from harness.config.labs import find_labs, select_devices
    from harness.lab.tray import run_tray

    out, err = _consoles()
    work = select_devices(find_labs(lab), device)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("[bold]{task.description:<16}"), TextColumn("{task.fields[phase]:<28}"), BarColumn(),
               DownloadColumn(), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=False) as progress:
        reporter = RichReporter(progress, [d.name for _, d in work])
        results = run_tray(work, lambda lb, d: action(lb, d, reporter), jobs)
    out.print(_verdicts(action_name, results))
    summary = out_dir / f"{action_name}.json"
    summary.write_text(json.dumps([_as_dict(r) for r in results], indent=2) + "\n")
    out.print(f"per-device results: {summary}   logs: {out_dir / 'logs'}")
    return results


def _as_dict(r: DeviceResult) -> dict:
    flash = r.flash
    return {
        "device": r.name, "port": r.port, "verdict": r.verdict, "micropython": r.version, "banner": r.banner,
        "passed": r.passed, "failed": r.failed, "errors": r.errors, "skipped": r.skipped, "problem": r.problem,
        "seconds": round(r.seconds, 2), "junit": str(r.junit) if r.junit else None, "notes": r.notes,
        "flash": None if flash is None else {
            "method": flash.method, "summary": flash.summary(), "bytes_written": flash.bytes_written,
            "bytes_per_second": round(flash.throughput), "notes": flash.notes,
            "files": [{"name": f.name, "size": f.size, "digest": f.digest, "written": f.written} for f in flash.files],
        },
    }  # fmt: skip


def _verdicts(title: str, results: list[DeviceResult]) -> Table:
    table = Table(title=f"{title}: per-device verdict")
    for col in ("device", "port", "verdict", "flash", "MicroPython", "passed", "failed", "errors", "skipped",
                "seconds", "first problem"):  # fmt: skip
        table.add_column(col)
    for r in results:
        table.add_row(
            r.name, r.port or "-", f"[{COLORS[r.verdict]}]{r.verdict}[/]",
            r.flash.summary() if r.flash else "-", r.version or "-",
            str(r.passed), str(r.failed), str(r.errors), str(r.skipped), f"{r.seconds:.1f}", r.problem[:240],
        )  # fmt: skip
    return table


def flash(
    lab: LabOption = None,
    device: DeviceOption = None,
    jobs: JobsOption = 0,
    force: Annotated[bool, typer.Option("--force", help="rewrite files that are already identical")] = False,
    out_dir: OutOption = Path("hil-out/devices"),
    lock_timeout: LockTimeoutOption = 30.0,
) -> None:
    """Flash a tray of devices in parallel; each write is verified by read-back. Each device is locked
    while it is flashed (the lock pytest runs take)."""
    from harness.lab.tray import flash_only

    out_dir = out_dir.resolve()
    results = _run("flash", lab, device, jobs, out_dir,
                   lambda lb, d, rep: flash_only(lb, d, out_dir, rep, force=force,
                                                 lock_timeout=lock_timeout))  # fmt: skip
    raise typer.Exit(0 if all(r.verdict == "PASS" for r in results) else 1)


def smoke(
    lab: LabOption = None,
    device: DeviceOption = None,
    jobs: JobsOption = 0,
    no_flash: Annotated[bool, typer.Option("--no-flash", help="skip flashing: banner, version, suite only")] = False,
    suite: Annotated[Path | None, typer.Option("--suite", help="suite to run (default suites/smoke)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds the suite may take per device")] = 600.0,
    out_dir: OutOption = Path("hil-out/devices"),
    lock_timeout: LockTimeoutOption = 30.0,
) -> None:
    """Flash, reset, check banner and version, run the smoke suite: a verdict per device. Each device
    is locked for all of it (the lock pytest runs take; the suite's pytest is handed it)."""
    from harness.lab.tray import smoke_device
    from harness.paths import resource

    out_dir = out_dir.resolve()
    chosen = (suite or resource("suites") / "smoke").resolve()
    if not chosen.exists():
        from harness.errors import ConfigError

        raise ConfigError(f"--suite {suite}: no such file or directory")
    results = _run("smoke", lab, device, jobs, out_dir,
                   lambda lb, d, rep: smoke_device(lb, d, out_dir, rep, flash=not no_flash, suite=chosen,
                                                   timeout=timeout, lock_timeout=lock_timeout))  # fmt: skip
    raise typer.Exit(0 if all(r.verdict == "PASS" for r in results) else 1)


def register(app: typer.Typer) -> None:
    app.command(name="devices")(devices)
    app.command(name="flash")(flash)
    app.command(name="smoke")(smoke)
