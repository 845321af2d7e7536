"""Board definition files (targets/<name>.toml) -> validated BoardSpec dataclasses.

One model for emulated and real boards: [image] says how the image is made, [launch] how the
board is started (QEMU, a host process, or a serial port), [console] how its REPL is reached,
[capabilities] what suites may expect of it. Every mistake is a one-line ConfigError naming
the file and key."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness.config.schema import fill, read_toml
from harness.errors import ConfigError
from harness.paths import resource

# Debian packages of the programs target files name, for "install it" hints
DEBIAN_PACKAGES = {
    "qemu-system-arm": "qemu-system-arm", "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-i386": "qemu-system-x86", "qemu-system-aarch64": "qemu-system-arm",
    "qemu-system-riscv32": "qemu-system-misc", "qemu-system-riscv64": "qemu-system-misc",
    "qemu-system-xtensa": "qemu-system-misc",
}  # fmt: skip
COMMON_CAN_INTERFACES = ("socketcan", "slcan", "pcan", "kvaser", "gs_usb", "virtual")

Chardev = Literal["pty", "socket"]
ResetKind = Literal["soft", "none"]
NetMode = Literal["none", "user", "tap"]
NicKind = Literal["device", "board"]
NetConfigure = Literal["kernel", "repl"]
CanLink = Literal["none", "slcan_serial", "python_can"]


@dataclass
class ImageSpec:
    builder: str = "none"
    options: dict[str, Any] = field(default_factory=dict)


# --- [launch]: one dataclass per kind, picked by `kind` through LAUNCH_SPECS -----------------------
@dataclass
class QemuLaunch:
    """A QEMU machine (harness/launch/qemu)."""

    kind: Literal["qemu"] = "qemu"
    physical: ClassVar[bool] = False  # started afresh per holder; not a device on a bench
    binary: str = "qemu-system-arm"
    machine: str = ""
    args: list[str] = field(default_factory=list)  # may use {kernel} {initrd} {hex} {firmware_py}
    # how a board exit status maps to a verdict (semihosting exit codes)
    ok_exit_codes: list[int] = field(default_factory=lambda: [0])

    def check(self, where: str) -> None:
        if not self.machine:
            raise ConfigError(f"{where}: key 'launch.machine' is required for a QEMU board (e.g. \"mps2-an385\")")

    def describe(self) -> str:
        return self.machine


@dataclass
class ProcessLaunch:
    """A host process on a pty (harness/launch/process.py), e.g. MicroPython's unix port."""

    kind: Literal["process"] = "process"
    physical: ClassVar[bool] = False
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # start the next process while the current one runs, so a soft reset does not wait for a start
    # (off for programs that must not run twice at once: they bind a port, lock a file, ...)
    spare: bool = False
    # the program is this Python entry point ("module:function", the command's own): each process is
    # forked from a server that imported it once, instead of a CPython start and import per process
    entry: str = ""

    def check(self, where: str) -> None:
        if not self.command:
            raise ConfigError(
                f"{where}: key 'launch.command' is required for a process board (e.g. [\"micropython\"])"
            )

    def describe(self) -> str:
        return " ".join(self.command)


@dataclass
class SerialLaunch:
    """A real device's serial port (harness/launch/serial.py); any form harness/config/ports.py parses."""

    kind: Literal["serial"] = "serial"
    physical: ClassVar[bool] = True  # one device: one holder at a time (harness/lab/pool.py locks it)
    port: str = ""

    def check(self, where: str) -> None:
        if not self.port:
            raise ConfigError(f"{where}: key 'launch.port' is required for a serial board (e.g. \"/dev/ttyACM0\")")

    def describe(self) -> str:
        return self.port


LaunchSpec = QemuLaunch | ProcessLaunch | SerialLaunch
LAUNCH_SPECS: dict[str, type[QemuLaunch] | type[ProcessLaunch] | type[SerialLaunch]] = {
    "qemu": QemuLaunch, "process": ProcessLaunch, "serial": SerialLaunch,
}  # fmt: skip
LAUNCH_KINDS = tuple(LAUNCH_SPECS)


def load_launch(data: Any, where: str) -> LaunchSpec:
    """The [launch] table: its ``kind`` (default qemu) picks the dataclass that checks the rest."""
    kind = data.get("kind", "qemu") if isinstance(data, dict) else "qemu"
    if kind not in LAUNCH_SPECS:
        raise ConfigError(f"{where}: key 'launch.kind' is {kind!r}; use one of {', '.join(LAUNCH_KINDS)}")
    launch = fill(LAUNCH_SPECS[kind], data, where, "launch.")
    launch.check(where)
    return launch


# MicroPython's own fatal errors: the unix port's and the bare-metal ports' nlr_jump_fail
MICROPYTHON_CRASH = (r"FATAL: uncaught (?:NLR|exception)", r"^uncaught NLR")


@dataclass
class ConsoleSpec:
    # QEMU boards: "pty" (a pty the harness makes and hands QEMU as a serial chardev, opened with
    # pyserial exactly like /dev/ttyACM0: no lag, unlike QEMU's own pty chardev, which notices a
    # reader only on a 1 s timer; harness/launch/qemu/hostpty.py) or "socket" (a TCP chardev
    # through pyserial's socket:// handler).
    chardev: Chardev = "pty"
    baudrate: int = 115200
    write_chunk: int = 0  # bytes per paced write; 0 = unpaced
    write_gap_ms: float = 0.0  # pause after each paced chunk (UARTs without flow control)
    boot_timeout: float = 20.0
    exec_timeout: float = 10.0
    raw_paste: bool = True  # try raw-paste mode (flow controlled) before plain raw REPL
    # Flow control from the board's side, for a firmware without raw-paste whose UART drops what its
    # receive buffer cannot hold: code of up to rx_buffer bytes goes at once, longer code through the
    # firmware_py module ack_module (hil_paste.py), which says \x01 each ack_every bytes it has taken.
    rx_buffer: int = 0  # bytes the board's UART receive buffer holds; 0 = not bounded (flow controlled)
    ack_module: str = ""
    ack_every: int = 0
    # Code of at least compress_min bytes goes deflated through firmware_py/hil_paste.py unz() when
    # that is shorter (harness/io/codepack.py): for consoles whose every byte is slow, e.g. QEMU's
    # CMSDK UART, which takes one byte per main-loop pass. 0 = never.
    compress_min: int = 0
    reset: ResetKind = "soft"  # soft (Ctrl-D) | none: what happens between tests
    # Crash signatures (regexes, multiline): one on the console while code runs, or in the launcher's
    # account of a board that went away meanwhile, fails the test at once as BoardCrashed with the dump.
    crash: list[str] = field(default_factory=lambda: list(MICROPYTHON_CRASH))
    # For fault handlers that print nothing (QEMU boards): a regex over QEMU's `info registers`, asked
    # whenever the console has been quiet for a moment while code runs; a match is a crash.
    crash_cpu: str = ""


@dataclass
class NetworkSpec:
    """QEMU board networking. user: QEMU's user-mode stack, guest ports forwarded to per-instance
    host ports on 127.0.0.1. tap: a real L2 link, the board's tap on a bridge inside a network
    namespace the harness creates (boards with the same segment share it)."""

    mode: NetMode = "none"
    device: str = "virtio-net-pci"
    # device: a NIC QEMU adds (-device DEVICE); board: the machine's own NIC (-net nic,model=DEVICE),
    # e.g. the LAN9118 soldered onto mps2-an385
    nic: NicKind = "device"
    mac: str = ""  # the NIC's MAC (boards on one tap segment get consecutive ones); "" = QEMU's
    # how the board learns its address: kernel (hil.ip= on a Linux command line), or repl (the
    # harness calls hil_net.up() once the firmware's REPL answers: DHCP on user, static on tap)
    configure: NetConfigure = "kernel"

    @property
    def on_kernel_cmdline(self) -> bool:
        """The guest learns its network from hil.ip=/hil.gw= on a Linux kernel command line."""
        return self.mode != "none" and self.configure == "kernel"
    forward_tcp: list[int] = field(default_factory=list)  # guest ports reachable from the host (user mode)
    forward_udp: list[int] = field(default_factory=list)
    subnet: str = "192.168.77"  # tap mode: /24 inside the harness's namespace; .1 is the host side
    segment: str = ""  # tap mode: boards naming the same segment share one bridge
    # tap mode: the board's host number on its segment (address .N, MAC + N - 10); 0: .10, .11, ...
    # in boot order. Fixed numbers keep a board's address, and so its snapshot, across runs.
    host: int = 0
    capture: bool = True  # per-test pcap of the board's traffic (QEMU filter-dump)


@dataclass
class CanSpec:
    """The board's CAN link and how the host reaches it.

    slcan_serial (QEMU boards): the guest's second serial port carries slcan; the host speaks
    python-can slcan to it over socket:// (QEMU maps that serial port to a TCP server on 127.0.0.1).
    python_can (real boards, e.g. a lab device's ``can = {...}``): the host opens python-can
    ``interface`` on ``channel``; a ``bitrate`` is given to both ends."""

    link: CanLink = "none"
    bitrate: int = 0  # 0: the link's default (slcan_serial: 500000; python_can: the interface's own)
    # Linux guests learn about the link from hil.can=1 on the kernel command line; boards without
    # a kernel (mps2_an385: an SLCAN speaker in firmware on UART1) set this to false.
    kernel_params: bool = True
    interface: str = ""  # python_can: a python-can interface ("socketcan", "slcan", "pcan", ...)
    channel: str = ""  # python_can: its channel ("can0", "/dev/serial/by-id/...", ...)

    SLCAN_BITRATE: ClassVar[int] = 500000

    def check(self, where: str) -> None:
        if self.link != "python_can":
            return
        for key, example in (("interface", "socketcan"), ("channel", "can0")):
            if not getattr(self, key):
                raise ConfigError(f"{where}: key 'can.{key}' is required for link python_can "
                                  f"(a python-can {key}, e.g. \"{example}\")")  # fmt: skip
        try:
            from can.interfaces import VALID_INTERFACES
        except ImportError:  # python-can missing: checked when used
            return
        if self.interface not in VALID_INTERFACES:
            raise ConfigError(
                f"{where}: key 'can.interface' is {self.interface!r}; use a python-can interface "
                f"(e.g. {', '.join(i for i in COMMON_CAN_INTERFACES if i in VALID_INTERFACES)})"
            )


@dataclass
class SnapshotSpec:
    """Boot once, save the VM state with MicroPython up (QEMU migration to a file), restore later
    instances from it; stale or failing snapshots fall back to a cold boot."""

    enabled: bool = False
    set_clock: bool = True  # restored guests wake with the save time: set it (Linux guests: date -s)


@dataclass
class Capabilities:
    net: bool = False
    tls: bool = False
    can: bool = False
    fs: bool = False
    ipv6: bool = False
    asm_thumb: bool = False
    soft_reset: bool = True
    tap: bool = False  # a real L2 link the host can inject packets into (network.mode = "tap")
    semihosting: bool = False  # QEMU runs it with -semihosting: firmware can end the machine with a status
    # the project's firmware_py/ modules are on the board (built in, or copied by the flasher);
    # false for stock firmware run as it ships (a prebuilt image)
    firmware_py: bool = True
    heap_kb: int = 0

    def has(self, name: str) -> bool:
        return bool(getattr(self, name, False))

    def listed(self) -> list[str]:
        return [f.name for f in fields(self) if f.type in (bool, "bool") and self.has(f.name)]


@dataclass
class BoardSpec:
    name: str
    path: Path
    description: str = ""
    arch: str = ""
    default: bool = True  # part of `make run`'s default set
    tags: list[str] = field(default_factory=list)  # extra names `--board tag:NAME` selects it by
    image: ImageSpec = field(default_factory=ImageSpec)
    launch: LaunchSpec = field(default_factory=QemuLaunch)
    console: ConsoleSpec = field(default_factory=ConsoleSpec)
    capabilities: Capabilities = field(default_factory=Capabilities)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    can: CanSpec = field(default_factory=CanSpec)
    snapshot: SnapshotSpec = field(default_factory=SnapshotSpec)


def load_board(path: Path) -> BoardSpec:
    """Parse and validate one target file."""
    raw = read_toml(path, "target file")
    board = raw.pop("board", None)
    if not isinstance(board, dict):
        raise ConfigError(f"{path}: missing [board] table; add [board] with name = \"{path.stem}\"")
    name = board.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: key 'board.name' must be a non-empty string")
    if name != path.stem:
        raise ConfigError(f"{path}: key 'board.name' is {name!r} but the file is {path.name}; make them match")
    sections = ("image", "launch", "console", "capabilities", "network", "can", "snapshot")
    for key in raw:
        if key not in sections:
            raise ConfigError(f"{path}: unknown table [{key}] (known: board, {', '.join(sections)})")
    image_raw = dict(raw.get("image", {}))
    builder = image_raw.pop("builder", "none")
    if not isinstance(builder, str):
        raise ConfigError(f"{path}: key 'image.builder' must be a string")
    where = str(path)
    table = fill(_BoardTable, board, where, "board.")
    spec = BoardSpec(
        name=name,
        path=path,
        description=table.description,
        arch=table.arch,
        default=table.default,
        tags=table.tags,
        image=ImageSpec(builder=builder, options=image_raw),
        launch=load_launch(raw.get("launch", {}), where),
        console=fill(ConsoleSpec, raw.get("console", {}), where, "console."),
        capabilities=fill(Capabilities, raw.get("capabilities", {}), where, "capabilities."),
        network=fill(NetworkSpec, raw.get("network", {}), where, "network."),
        can=fill(CanSpec, raw.get("can", {}), where, "can."),
        snapshot=fill(SnapshotSpec, raw.get("snapshot", {}), where, "snapshot."),
    )
    _check_values(spec)
    return spec


@dataclass
class _BoardTable:  # the [board] table's keys
    name: str = ""
    description: str = ""
    arch: str = ""
    default: bool = True
    tags: list[str] = field(default_factory=list)


def _check_values(spec: BoardSpec) -> None:
    p, launch = spec.path, spec.launch
    from harness.images import BUILDERS  # late: images imports errors only

    if spec.image.builder not in BUILDERS:
        raise ConfigError(
            f"{p}: key 'image.builder' is {spec.image.builder!r}; use one of {', '.join(sorted(BUILDERS))}"
        )
    net = spec.network
    if net.mac and not _is_mac(net.mac):
        raise ConfigError(f"{p}: key 'network.mac' is {net.mac!r}; write six hex bytes, e.g. \"52:54:00:12:34:56\"")
    for tag in spec.tags:
        if not tag or tag.startswith("tag:"):
            raise ConfigError(f"{p}: key 'board.tags' has {tag!r}; write tag names without 'tag:'")
    check_board(spec, str(p))
    needs_cmdline = net.on_kernel_cmdline or (spec.can.link == "slcan_serial" and spec.can.kernel_params)
    if needs_cmdline and launch.kind == "qemu" and "-append" not in launch.args:  # check_board: only QEMU
        raise ConfigError(
            f"{p}: [network]/[can] pass settings on the kernel command line: add \"-append\" to launch.args"
        )
    for port in spec.network.forward_tcp + spec.network.forward_udp:
        if not 0 < port < 65536:
            raise ConfigError(f"{p}: port {port} in network.forward_* is not a TCP/UDP port")


def check_board(spec: BoardSpec, where: str) -> None:
    """What a board must satisfy beyond each key's type, whether it came from a board file or a lab
    device's overrides (labs.py): ``where`` says which, for the one-line error."""
    uses_qemu_features = spec.network.mode != "none" or spec.can.link == "slcan_serial" or spec.snapshot.enabled
    if uses_qemu_features and spec.launch.kind != "qemu":
        raise ConfigError(f"{where}: [network], [can] link slcan_serial and [snapshot] need launch.kind = \"qemu\"")
    spec.can.check(where)
    for key in ("boot_timeout", "exec_timeout"):
        if getattr(spec.console, key) <= 0:
            raise ConfigError(f"{where}: key 'console.{key}' must be > 0 seconds")
    if spec.console.write_chunk < 0 or spec.console.write_gap_ms < 0:
        raise ConfigError(f"{where}: keys 'console.write_chunk' and 'console.write_gap_ms' must be >= 0")
    c = spec.console
    if c.ack_module and not (c.rx_buffer > 0 and 0 < c.ack_every <= c.rx_buffer):
        raise ConfigError(f"{where}: key 'console.ack_module' needs 'console.rx_buffer' > 0 and "
                          f"'console.ack_every' between 1 and rx_buffer (got {c.rx_buffer} and {c.ack_every})")
    if c.compress_min < 0:
        raise ConfigError(f"{where}: key 'console.compress_min' is {c.compress_min}; use a byte count >= 0 (0 = off)")
    for key, patterns in (("crash", spec.console.crash), ("crash_cpu", [spec.console.crash_cpu])):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"{where}: key 'console.{key}' has {pattern!r}, which is not a regular expression: {exc}"
                ) from None
    if spec.console.crash_cpu and spec.launch.kind != "qemu":
        raise ConfigError(f"{where}: key 'console.crash_cpu' asks QEMU for registers: set it on QEMU boards only")


def _program_problem(program: str, where: str, key: str) -> str | None:
    """None if ``program`` (a name on PATH, or a path) can be run, else the one-line fix."""
    if os.sep in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return None
        state = "is not executable" if os.path.exists(program) else "does not exist"
        return f"{where}: key '{key}' is {program!r}, which {state}: install it or fix the path"
    if shutil.which(program):
        return None
    package = DEBIAN_PACKAGES.get(program)
    fix = f"install Debian package {package} (make setup does)" if package else "install it or fix the path"
    return f"{where}: key '{key}' is {program!r}, which is not on PATH: {fix}"


def installation_problems(spec: BoardSpec, where: str | None = None) -> list[str]:
    """What this machine lacks to start the board: its QEMU binary. Kept out of
    ``load_board`` (a target file is valid on a machine without QEMU: unit tests, `hil boards` in
    CI): `hil boards` lists these problems and every board start checks them first (check_installed)."""
    where = where or str(spec.path)
    launch = spec.launch
    # A process board's program may be a {venv_bin} template: its launcher names file and key when it
    # is missing. A serial port is the bench's state, not the installation's: checked when opened.
    problem = _program_problem(launch.binary, where, "launch.binary") if isinstance(launch, QemuLaunch) else None
    return [problem] if problem else []


def check_installed(spec: BoardSpec, where: str | None = None) -> None:
    """ConfigError (one line: file, key, fix) if the board's launch program is missing: a retry on a
    fresh board cannot install it, so this is a configuration error, never an infrastructure one."""
    problems = installation_problems(spec, where)
    if problems:
        raise ConfigError(problems[0])


def _is_mac(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 6 and all(len(x) == 2 and all(c in "0123456789abcdefABCDEF" for c in x) for x in parts)


def targets_dir() -> Path:
    """The board files' folder: $HIL_TARGETS, else the project's targets/ (see harness/paths.py)."""
    return resource("targets")


def is_lab_file(path: Path) -> bool:
    """targets/ holds board files and lab files; lab files are the ones named lab*.toml."""
    return path.name.startswith("lab")


def board_files(directory: Path | None = None) -> list[Path]:
    return [p for p in sorted((directory or targets_dir()).glob("*.toml")) if not is_lab_file(p)]


def load_all(directory: Path | None = None) -> dict[str, BoardSpec]:
    return {p.stem: load_board(p) for p in board_files(directory)}


def find_board(name: str, directory: Path | None = None) -> BoardSpec:
    directory = directory or targets_dir()
    path = directory / f"{name}.toml"
    if not path.exists() or is_lab_file(path):
        known = ", ".join(p.stem for p in board_files(directory)) or "none"
        what = "is a lab file, not a board" if path.exists() else "does not exist"
        raise ConfigError(f"no board named {name!r}: {path} {what} (known boards: {known})")
    return load_board(path)
