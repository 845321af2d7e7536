"""A running board: target file -> image -> launcher -> transport -> console -> raw REPL.

Lifecycle: build() -> start() (launch + wait for a MicroPython prompt) -> exec/eval/soft_reset
-> stop(). Any failure to get there is an InfrastructureError carrying the console tail; a
board that dies while in use is reported as BoardDied with the launcher's account of why."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect

from harness.config.boards import BoardSpec
from harness.errors import BoardCrashed, BoardDied, BootError, ConfigError, ConsoleTimeout, InfrastructureError
from harness.images import BuildContext, Image, build_image
from harness.io.console import Console
from harness.io.recording import RecordingTransport
from harness.io.repl import (
    FRIENDLY_PROMPT,
    INTERRUPT_WAIT,
    RAW_PROMPT,
    BoardException,
    ExecTimeout,
    RawRepl,
    RunningCode,
    Unresponsive,
    client_settings,
)
from harness.launch import Launcher, make_launcher
from harness.net.boardnet import BoardNet
from harness.paths import resource
from harness.report.journal import Journal

if TYPE_CHECKING:  # python-can costs every process 0.2 s to import; only CAN boards need it
    import can

    from harness.net.canlink import SlcanLink


class FirmwareExit(AssertionError):
    """The firmware ended the machine with a failing status (a test failure, not infrastructure)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Seconds a board that can be restarted gets to answer Ctrl-C once its code ran past its timeout
# (MicroPython answers within milliseconds, tens of them on a loaded TCG guest) before it is
# restarted: a restart is a fresh board with the same ExecTimeout, waiting longer only makes the
# test overrun its timeout.
INTERRUPT_WAIT_RESETTABLE = 0.5

_BANNER = re.compile(r"MicroPython v?\S+ on [^\r\n]*")
_BANNER_PROMPT = re.compile(rb"MicroPython v?\S+ on [^\r\n]*\r\n(?:[^\r\n]*\r\n)?>>> ")
_FACTS = (
    "import sys, gc\n"
    "gc.collect()\n"
    "print(repr((sys.implementation.name, tuple(sys.implementation.version), sys.platform,"
    " gc.mem_free() + gc.mem_alloc())))"
)


@dataclass
class BoardFacts:
    """What the board said about itself once it was up."""

    banner: str = ""
    implementation: str = ""
    version: str = ""
    platform: str = ""
    heap_bytes: int = 0
    boot_seconds: float = 0.0
    image_digest: str = ""
    boot_kind: str = ""  # of the last start: "restored" (from a snapshot) or "cold"
    boot_note: str = ""  # why, when it is worth saying: "snapshot restore failed: ...; cold boot"
    snapshot_fallbacks: int = 0  # starts of this board that meant to restore a snapshot and booted cold
    extra: dict[str, str] = field(default_factory=dict)


def sweep_stale_workdirs() -> None:
    """Remove board work dirs (hil-<board>-<pid>-<random>) whose process is gone: a harness killed
    with -9 cannot remove its own, so the next one does."""
    for path in Path(tempfile.gettempdir()).glob("hil-*-*-*"):
        _prefix, pid, _rand = path.name.rsplit("-", 2)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


class Board:
    def __init__(
        self,
        spec: BoardSpec,
        *,
        log_dir: Path | None = None,
        firmware_py: Path | None = None,  # default: the project's firmware_py/
        log=print,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.firmware_py = firmware_py or resource("firmware_py")
        self.log = log
        sweep_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"hil-{spec.name}-{os.getpid()}-"))
        self.log_dir = log_dir or self.workdir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.console_log = self.log_dir / f"{spec.name}.console.log"
        self.image: Image | None = None
        self.launcher: Launcher | None = None
        self.console: Console | None = None
        self.repl: RawRepl | None = None
        self.facts = BoardFacts()
        self.fresh = False
        # console bytes both ways and harness events, timestamped and bounded: a failing test's
        # slice of it is its evidence timeline (harness/pytest/evidence.py); kept across restarts
        self.journal = Journal()
        self.console_opened_at = 0.0

    # --- lifecycle ------------------------------------------------------------------------------
    def build(self) -> Image:
        if self.image is None:
            started = time.monotonic()
            ctx = BuildContext(
                firmware_py=self.firmware_py, log=lambda m: self.log(f"[{self.name}] {m}"), target=self.spec.path
            )
            try:
                self.image = build_image(self.spec.image.builder, ctx, self.spec.image.options)
            except ConfigError as exc:  # a builder's complaint about [image]: say which file
                raise ConfigError(f"{self.spec.path}: {exc}") from None
            if not self.image.cached and self.spec.image.builder != "none":
                self.log(f"[{self.name}] image {self.image.digest} built in {time.monotonic() - started:.1f} s")
            self.facts.image_digest = self.image.digest
        return self.image

    def start(self) -> Board:
        image = self.build()
        self.launcher = make_launcher(
            self.spec, image, self.workdir, self.firmware_py, log=lambda m: self.log(m)
        )
        self.fresh = True  # interpreter untouched since boot: the first test needs no reset
        started = time.monotonic()
        self.journal.event(f"boot {self.name}: starting")
        try:
            transport = RecordingTransport(self.launcher.start(), journal=self.journal)
            # wall time the launcher handed over a running machine: a cold-booted QEMU's virtual clock
            # (its pcap timestamps) started just before this (harness/pytest/evidence.py capture_clock)
            self.console_opened_at = time.time()
            self.journal.event(f"console {transport.name} open")
            if self.launcher.can is not None:
                self.launcher.can.journal = self.journal  # frames on its CAN link: onto the same timeline
            self.console = Console(
                transport, self.console_log, timeout=self.spec.console.exec_timeout, crash=self.spec.console.crash
            )
            if self.spec.console.crash_cpu:
                self.console.on_quiet = self._probe_cpu
            self.console.note(f"boot {self.name}")
            self.repl = RawRepl(
                self.console, **client_settings(self.spec.console),
                # a board we can restart is restarted when Ctrl-C is not answered at once; a bench
                # device cannot be, so it gets longer before it is called unresponsive
                interrupt_wait=INTERRUPT_WAIT_RESETTABLE if self.launcher.can_hard_reset else INTERRUPT_WAIT,
            )
            self._wait_prompt(started + self.spec.console.boot_timeout)
            self.launcher.at_prompt()  # e.g. QEMU saves its snapshot: restores land right here
            self._enter_raw_with_banner()
            self.facts.boot_seconds = time.monotonic() - started
            self._note_boot_kind(self.launcher)
            self.journal.event(f"boot {self.name}: at the prompt after {self.facts.boot_seconds:.3f} s "
                               f"({self.facts.boot_kind}{', ' + self.facts.boot_note if self.facts.boot_note else ''})")
            if self.spec.snapshot.enabled and self.spec.snapshot.set_clock:
                # a restored guest wakes with the clock of the moment it was saved (and a cold
                # one starts from the RTC's whole second): TLS validity checks need the real time
                self.exec(f"import os\nos.system('date -s @{int(time.time())} >/dev/null')")
            self._collect_facts()
            if self.launcher.net and self.spec.network.configure == "repl":
                self._configure_network(self.launcher.net)
        except BaseException as exc:
            self.journal.event(f"boot {self.name}: failed: {type(exc).__name__}: {str(exc)[:300]}")
            self.stop()
            raise
        return self

    def _note_boot_kind(self, launcher: Launcher) -> None:
        self.facts.boot_kind = "restored" if launcher.restored else "cold"
        self.facts.boot_note = launcher.boot_note
        self.facts.extra["started_from"] = "snapshot" if launcher.restored else "cold boot"
        if launcher.snapshot_fallback:
            self.facts.snapshot_fallbacks += 1
            self.console_note(f"{self.name}: {launcher.boot_note}")

    def restart(self) -> None:
        """Hard reset: stop the emulator/process and boot again (QEMU and process boards only)."""
        self.journal.event(f"restart {self.name} (hard reset)")
        self._shutdown()
        self.start()

    def _wait_prompt(self, deadline: float) -> None:
        """Poke the console until a MicroPython prompt answers; the banner printed before we
        attached may be lost (a pty drops output while nobody has it open)."""
        assert self.console and self.launcher and self.repl
        seen = 0
        while True:
            if not self.launcher.alive():
                raise BootError(f"{self.name}: board died while booting: {self.launcher.death()}; {self._tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                hint = " (garbage on the line? wrong baud rate or not MicroPython?)" if seen > 64 else ""
                raise BootError(
                    f"{self.name}: no MicroPython prompt within {self.spec.console.boot_timeout:g} s{hint}; "
                    f"{self._tail()}"
                )
            self.console.send(b"\r\x03")
            try:
                self.console.expect_exact([FRIENDLY_PROMPT, RAW_PROMPT], timeout=min(0.5, left))
                break
            except pexpect.TIMEOUT:
                seen = self.console.received
            except BoardDied as exc:
                raise BootError(f"{self.name}: board died while booting: {exc}; {self._tail()}") from None

    def _enter_raw_with_banner(self) -> None:
        assert self.console and self.repl
        # Ctrl-B at the friendly prompt reprints the banner: the version string as the board tells it.
        early = self.console.before + self.console.flush_input()
        self.console.send(b"\x02")
        # Wait for the banner itself, not just a prompt: over a slow link (RFC 2217, USB) prompts
        # answering the pokes above may still be on their way and would end the wait too early.
        try:
            self.console.expect(_BANNER_PROMPT, timeout=5.0)
            banner = early + self.console.after
        except pexpect.TIMEOUT:
            banner = early + self.console.before
        found = _BANNER.findall(banner.decode("utf-8", "replace"))
        self.facts.banner = found[-1].strip() if found else ""
        self.repl.enter_raw()

    def _configure_network(self, net: BoardNet) -> None:
        """A firmware with its own IP stack brings its interface up itself (hil_net.up): DHCP from
        QEMU's user-mode stack, or the tap segment's static address."""
        static = net.static_address()
        args = f"{static[0]!r}, {static[1]!r}" if static else ""
        try:
            out = self.exec(f"import hil_net\nhil_net.up({args})", timeout=self.spec.console.boot_timeout)
        except (OSError, BoardException) as exc:  # the board's exception (no network module, ...), on the host
            reason = exc.message if isinstance(exc, BoardException) else str(exc)  # without its traceback
            raise BootError(f"{self.name}: network did not come up: {reason}; {self._tail()}") from None
        except ExecTimeout:  # hil_net.up gives up on its own well before: the firmware is wedged
            raise BootError(
                f"{self.name}: network did not come up: hil_net.up() still running after "
                f"{self.spec.console.boot_timeout:g} s; {self._tail()}"
            ) from None
        self.facts.extra["network"] = out.strip()

    def _collect_facts(self) -> None:
        name, version, platform, heap = self.eval(_FACTS)
        self.facts.implementation = name
        self.facts.version = ".".join(str(v) for v in version[:3] if v != "")
        self.facts.platform = platform
        self.facts.heap_bytes = heap

    def _shutdown(self) -> None:
        if self.console or self.launcher:
            self.journal.event(f"stop {self.name}")
        if self.console:
            self.console.note(f"stop {self.name}")
            self.console.close()
            self.console = None
        if self.launcher:
            self.launcher.stop()
        self.repl = None

    def stop(self) -> None:
        self._shutdown()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Board:
        return self if self.console else self.start()  # `with board.start():` must not boot twice

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- use --------------------------------------------------------------------------------------
    def exec(self, code: str, timeout: float | None = None) -> str:
        try:
            return self._guard(lambda: self._repl().exec(code, timeout))
        except Unresponsive as exc:
            if not self.launcher or not self.launcher.can_hard_reset:
                raise  # no way to reset a bench device from here: infrastructure error
            self.console_note(f"runaway code did not stop on Ctrl-C: restarting {self.name}")
            self.restart()
            raise ExecTimeout(
                f"{self.name}: code ran past its timeout and ignored Ctrl-C; the board was restarted ({exc})",
                output=exc.output,
            ) from None

    def run_to_exit(self, code: str, timeout: float | None = None) -> int:
        """Run firmware code that ends the machine (semihosting exit on QEMU Arm boards) and return
        its exit status. A status outside launch.ok_exit_codes raises FirmwareExit (a test
        failure). The board is booted again afterwards, so later tests still have one."""
        if not self.launcher or not self.launcher.can_wait_exit:
            raise InfrastructureError(f"{self.name}: run_to_exit needs a board that can exit (QEMU semihosting)")
        timeout = self.spec.console.exec_timeout if timeout is None else timeout
        try:
            self._guard(lambda: self._repl().send_code(code))
        except BoardCrashed:
            raise
        except BoardDied as died:
            # short code starts at once (plain raw mode): the machine may end itself before its "OK"
            # is read (QEMU closes the console with it unread); that exit is the answer. A signal
            # from outside is not, and the exit may not be reaped yet when the console notices.
            try:
                ended = self.launcher.wait_exit(min(timeout, 5.0))
            except TimeoutError:
                raise died from None
            if ended < 0:
                raise died from None
        try:
            status = self.launcher.wait_exit(timeout)
        except TimeoutError:
            raise ExecTimeout(f"{self.name}: firmware did not exit within {timeout:g} s; {self._tail()}") from None
        finally:
            self.console_note(f"machine exited with status {self.launcher.exit_status}")
        if status < 0:
            # ended by a signal from outside (kill -9, the OOM killer, a CI runner cleaning up), not by
            # the firmware: infrastructure, retried on a fresh board (the pool restarts a dead one)
            raise BoardDied(f"{self.name}: while running code to its exit, {self.launcher.death()}; {self._tail()}")
        self.restart()
        ok = self.launcher.ok_exit_codes
        if status not in ok:
            raise FirmwareExit(status, f"{self.name}: firmware exited with status {status} (ok: {ok}); {self._tail()}")
        return status

    def spawn(self, code: str) -> RunningCode:
        """Start code and return at once (two-party tests): see repl.RunningCode."""
        return self._guard(lambda: self._repl().spawn(code))

    def console_note(self, text: str) -> None:
        """A harness marker: into the console log and onto the evidence timeline."""
        self.journal.event(text)
        if self.console:
            self.console.note(text)

    def eval(self, expression: str, timeout: float | None = None):
        if "\n" in expression:  # a block whose last line prints a repr
            return self._guard(lambda: self._eval_block(expression, timeout))
        return self._guard(lambda: self._repl().eval(expression, timeout))

    def _eval_block(self, code: str, timeout: float | None):
        import ast

        return ast.literal_eval(self._repl().exec(code, timeout).strip().splitlines()[-1])

    def soft_reset(self) -> None:
        self.journal.event(f"soft reset {self.name}")
        self._guard(lambda: self._repl().soft_reset(self.spec.console.boot_timeout))

    def alive(self) -> bool:
        """Running and of use: a crashed board counts as dead (the pool restarts it before the next test)."""
        crashed = self.console is not None and self.console.crashed is not None
        return self.launcher is not None and self.launcher.alive() and not crashed

    @property
    def net(self) -> BoardNet:
        if not self.launcher or not self.launcher.net:
            raise InfrastructureError(f"{self.name}: board has no network (see [network] in {self.spec.path})")
        return self.launcher.net

    @property
    def can_link(self) -> SlcanLink:
        if not self.launcher or not self.launcher.can:
            raise InfrastructureError(f"{self.name}: board has no CAN link (see [can] in {self.spec.path})")
        return self.launcher.can

    def host_can_bus(self) -> can.BusABC:
        """The host's end of the board's CAN bus (the caller shuts it down): a QEMU board's CAN link,
        or a bench device's python-can interface from its spec (a target's [can] or a lab device's
        ``can = { interface = ..., channel = ... }``). Its frames go onto the board's journal."""
        import can

        from harness.net.canlog import RecordingBus

        if self.launcher is not None and self.launcher.can is not None:
            return self.can_link.bus(sleep_after_open=0)  # python-can's default sleeps 2 s
        spec = self.spec.can
        if spec.link != "python_can":
            raise InfrastructureError(
                f"{self.name}: has capability 'can' but no CAN link: add [can] to its target file "
                "or can = { interface = ..., channel = ... } to its lab device"
            )
        kwargs: dict = {"interface": spec.interface, "channel": spec.channel}
        if spec.bitrate:
            kwargs["bitrate"] = spec.bitrate
        if spec.interface == "slcan":
            kwargs["sleep_after_open"] = 0
        try:
            return RecordingBus(can.Bus(**kwargs), self.journal)
        except (can.CanError, OSError, ValueError) as exc:
            raise InfrastructureError(f"{self.name}: cannot open CAN bus {kwargs}: {exc}") from None

    def _repl(self) -> RawRepl:
        if self.repl is None:
            raise InfrastructureError(f"{self.name}: board is not started")
        return self.repl

    def _guard(self, action):
        """Re-word console failures with the launcher's view: a dead QEMU says how it died; a crash
        signature (console.crash) in that account, while code ran, makes it BoardCrashed."""
        if self.console and self.console.crashed:
            raise BoardDied(f"{self.name}: the board crashed earlier ({self.console.crashed.signature}): restart it")
        try:
            return action()
        except BoardCrashed as exc:
            raise self._crash_report(exc) from None
        except (ConsoleTimeout, BoardDied) as exc:
            if self.launcher and self._launcher_gone(grace=1.0 if isinstance(exc, BoardDied) else 0.0):
                death = self.launcher.death()
                running = self.console is not None and self.console.crash_watch
                signature = self.console.crash_in(death) if running and self.console else None
                if signature and self.console:
                    output = self.console.code_output()
                    self.console.crashed = BoardCrashed(signature, death, output=output)
                    raise self._crash_report(self.console.crashed) from None
                raise BoardDied(f"{self.name}: {death}; {self._tail()}") from None
            said = type(exc)(f"{self.name}: {exc}")
            said.__dict__.update(exc.__dict__)  # e.g. Unresponsive.output
            raise said from None

    def _crash_report(self, exc: BoardCrashed) -> BoardCrashed:
        """The crash, said of this board (with a process board's exit status); noted in the log."""
        status = self.launcher.exit_status if self.launcher else None
        if status is not None and self.launcher and self.launcher.alive():  # a process that was restarted
            exc = BoardCrashed(exc.signature, f"{exc.dump}\n(the board's process had exited with status {status})")
        self.console_note(f"{self.name} crashed ({exc.signature}): restarted before its next use")
        return exc.located(self.name)

    def _probe_cpu(self) -> None:
        """console.on_quiet for boards whose fault handler prints nothing: QEMU's view of the CPU."""
        qmp = getattr(self.launcher, "qmp", None)  # QEMU boards only (check_board enforces it)
        if qmp is None:
            return
        try:
            registers = str(qmp.cmd("human-monitor-command", **{"command-line": "info registers"}))
        except (InfrastructureError, OSError):
            return  # QEMU is going away: the console says so next
        found = re.search(self.spec.console.crash_cpu, registers)
        if found:
            raise BoardCrashed(f"CPU state {found.group(0)}", registers.replace("\r", "").strip())

    def _launcher_gone(self, grace: float) -> bool:
        """A dying process closes its console a moment before it can be reaped: when the link broke,
        give the launcher up to ``grace`` seconds to see its process gone."""
        deadline = time.monotonic() + grace
        while self.launcher.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _tail(self) -> str:
        tail = self.console.tail(300) if self.console else ""
        return f"console tail: {tail!r}" if tail else "console was silent"
