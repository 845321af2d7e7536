"""Board definition files (targets/<name>.toml) -> validated BoardSpec dataclasses.

One model for emulated and real boards: [image] says how the image is made, [launch] how the
board is started (QEMU, a host process, or a serial port), [console] how its REPL is reached,
[capabilities] what suites may expect of it. Every mistake is a one-line ConfigError naming
the file and key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin

from harness.errors import ConfigError
from harness.paths import resource

KNOWN_CAPABILITIES = ("net", "tls", "can", "fs", "ipv6", "asm_thumb", "soft_reset", "tap")


@dataclass
class ImageSpec:
    builder: str = "none"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LaunchSpec:
    kind: str = "qemu"  # qemu | process | serial
    # qemu
    binary: str = "qemu-system-arm"
    machine: str = ""
    args: list[str] = field(default_factory=list)  # may use {kernel} {initrd} {hex} {firmware_py}
    # process
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # serial
    port: str = ""
    # how a board exit status maps to a verdict (semihosting exit codes)
    ok_exit_codes: list[int] = field(default_factory=lambda: [0])


@dataclass
class ConsoleSpec:
    # QEMU boards: "pty" (QEMU's pty, opened with pyserial exactly like /dev/ttyACM0) or "socket"
    # (a TCP chardev through pyserial's socket:// handler: QEMU polls a pty for a reader only once
    # a second, so input lags up to 1 s after boot or restore; a socket is accepted at once).
    chardev: str = "pty"
    baudrate: int = 115200
    write_chunk: int = 0  # bytes per paced write; 0 = unpaced
    write_gap_ms: float = 0.0  # pause after each paced chunk (UARTs without flow control)
    boot_timeout: float = 20.0
    exec_timeout: float = 10.0
    raw_paste: bool = True  # try raw-paste mode (flow controlled) before plain raw REPL
    reset: str = "soft"  # soft (Ctrl-D) | none: what happens between tests


@dataclass
class NetworkSpec:
    """QEMU board networking. user: QEMU's user-mode stack, guest ports forwarded to per-instance
    host ports on 127.0.0.1. tap: a real L2 link, the board's tap on a bridge inside a network
    namespace the harness creates (boards with the same segment share it)."""

    mode: str = "none"  # none | user | tap
    device: str = "virtio-net-pci"
    # device: a NIC QEMU adds (-device DEVICE); board: the machine's own NIC (-net nic,model=DEVICE),
    # e.g. the LAN9118 soldered onto mps2-an385
    nic: str = "device"
    mac: str = ""  # the NIC's MAC (boards on one tap segment get consecutive ones); "" = QEMU's
    # how the board learns its address: kernel (hil.ip= on a Linux command line), or repl (the
    # harness calls hil_net.up() once the firmware's REPL answers: DHCP on user, static on tap)
    configure: str = "kernel"

    @property
    def on_kernel_cmdline(self) -> bool:
        """The guest learns its network from hil.ip=/hil.gw= on a Linux kernel command line."""
        return self.mode != "none" and self.configure == "kernel"
    forward_tcp: list[int] = field(default_factory=list)  # guest ports reachable from the host (user mode)
    forward_udp: list[int] = field(default_factory=list)
    subnet: str = "192.168.77"  # tap mode: /24 inside the harness's namespace; .1 is the host side
    segment: str = ""  # tap mode: boards naming the same segment share one bridge
    capture: bool = True  # per-test pcap of the board's traffic (QEMU filter-dump)


@dataclass
class CanSpec:
    """A CAN link: the guest's second serial port carries slcan; the host speaks python-can
    slcan to it over socket:// (QEMU maps that serial port to a TCP server on 127.0.0.1)."""

    link: str = "none"  # none | slcan_serial
    bitrate: int = 500000
    # Linux guests learn about the link from hil.can=1 on the kernel command line; boards without
    # a kernel (mps2_an385: an SLCAN speaker in firmware on UART1) set this to false.
    kernel_params: bool = True


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
    heap_kb: int = 0

    def has(self, name: str) -> bool:
        return bool(getattr(self, name, False))

    def listed(self) -> list[str]:
        return [c for c in KNOWN_CAPABILITIES if self.has(c)]


@dataclass
class BoardSpec:
    name: str
    path: Path
    description: str = ""
    arch: str = ""
    default: bool = True  # part of `make run`'s default set
    image: ImageSpec = field(default_factory=ImageSpec)
    launch: LaunchSpec = field(default_factory=LaunchSpec)
    console: ConsoleSpec = field(default_factory=ConsoleSpec)
    capabilities: Capabilities = field(default_factory=Capabilities)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    can: CanSpec = field(default_factory=CanSpec)
    snapshot: SnapshotSpec = field(default_factory=SnapshotSpec)


LAUNCH_KINDS = ("qemu", "process", "serial")
RESET_KINDS = ("soft", "none")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation) or annotation
    if isinstance(annotation, str):  # postponed annotations: resolve the few we use
        annotation = {"str": str, "int": int, "float": float, "bool": bool}.get(annotation, annotation)
        origin = annotation
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return isinstance(value, list) and all(item is Any or isinstance(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if origin is Any:
        return True
    return isinstance(value, origin)


_HINTS = {
    "str": str, "int": int, "float": float, "bool": bool,
    "list[str]": list[str], "list[int]": list[int],
    "dict[str, str]": dict[str, str], "dict[str, Any]": dict[str, Any],
}


def _fill(cls: type, data: dict, where: str, path: Path) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"{path}: unknown key '{where}{key}' (known: {', '.join(sorted(known))}); remove or rename it"
            )
        hint = _HINTS.get(str(known[key].type), known[key].type)
        if not _type_ok(value, hint):
            raise ConfigError(
                f"{path}: key '{where}{key}' must be {known[key].type}, got {type(value).__name__} {value!r}"
            )
        kwargs[key] = value
    return cls(**kwargs)


def load_board(path: Path) -> BoardSpec:
    """Parse and validate one target file."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such target file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    board = raw.pop("board", None)
    if not isinstance(board, dict):
        raise ConfigError(f"{path}: missing [board] table; add [board] with name = \"{path.stem}\"")
    name = board.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: key 'board.name' must be a non-empty string")
    if name != path.stem:
        raise ConfigError(f"{path}: key 'board.name' is {name!r} but the file is {path.name}; make them match")
    sections = {
        "image": ImageSpec, "launch": LaunchSpec, "console": ConsoleSpec, "capabilities": Capabilities,
        "network": NetworkSpec, "can": CanSpec, "snapshot": SnapshotSpec,
    }  # fmt: skip
    for key in raw:
        if key not in sections:
            raise ConfigError(f"{path}: unknown table [{key}] (known: board, {', '.join(sections)})")
    image_raw = dict(raw.get("image", {}))
    builder = image_raw.pop("builder", "none")
    if not isinstance(builder, str):
        raise ConfigError(f"{path}: key 'image.builder' must be a string")
    table = _fill(_BoardTable, board, "board.", path)
    spec = BoardSpec(
        name=name,
        path=path,
        description=table.description,
        arch=table.arch,
        default=table.default,
        image=ImageSpec(builder=builder, options=image_raw),
        launch=_fill(LaunchSpec, raw.get("launch", {}), "launch.", path),
        console=_fill(ConsoleSpec, raw.get("console", {}), "console.", path),
        capabilities=_fill(Capabilities, raw.get("capabilities", {}), "capabilities.", path),
        network=_fill(NetworkSpec, raw.get("network", {}), "network.", path),
        can=_fill(CanSpec, raw.get("can", {}), "can.", path),
        snapshot=_fill(SnapshotSpec, raw.get("snapshot", {}), "snapshot.", path),
    )
    _check_values(spec)
    return spec


@dataclass
class _BoardTable:  # the [board] table's keys
    name: str = ""
    description: str = ""
    arch: str = ""
    default: bool = True


def _check_values(spec: BoardSpec) -> None:
    p, launch = spec.path, spec.launch
    from harness.images import BUILDERS  # late: images imports errors only

    if spec.image.builder not in BUILDERS:
        raise ConfigError(
            f"{p}: key 'image.builder' is {spec.image.builder!r}; use one of {', '.join(sorted(BUILDERS))}"
        )
    if launch.kind not in LAUNCH_KINDS:
        raise ConfigError(f"{p}: key 'launch.kind' is {launch.kind!r}; use one of {', '.join(LAUNCH_KINDS)}")
    if launch.kind == "qemu" and not launch.machine:
        raise ConfigError(f"{p}: key 'launch.machine' is required for a QEMU board (e.g. \"mps2-an385\")")
    if launch.kind == "process" and not launch.command:
        raise ConfigError(f"{p}: key 'launch.command' is required for a process board (e.g. [\"micropython\"])")
    if launch.kind == "serial" and not launch.port:
        raise ConfigError(f"{p}: key 'launch.port' is required for a serial board (e.g. \"/dev/ttyACM0\")")
    if spec.console.chardev not in ("pty", "socket"):
        raise ConfigError(f"{p}: key 'console.chardev' is {spec.console.chardev!r}; use \"pty\" or \"socket\"")
    if spec.network.mode not in ("none", "user", "tap"):
        raise ConfigError(f"{p}: key 'network.mode' is {spec.network.mode!r}; use none, user or tap")
    net = spec.network
    if net.nic not in ("device", "board"):
        raise ConfigError(f"{p}: key 'network.nic' is {net.nic!r}; use \"device\" or \"board\"")
    if net.configure not in ("kernel", "repl"):
        raise ConfigError(f"{p}: key 'network.configure' is {net.configure!r}; use \"kernel\" or \"repl\"")
    if net.mac and not _is_mac(net.mac):
        raise ConfigError(f"{p}: key 'network.mac' is {net.mac!r}; write six hex bytes, e.g. \"52:54:00:12:34:56\"")
    if spec.can.link not in ("none", "slcan_serial"):
        raise ConfigError(f"{p}: key 'can.link' is {spec.can.link!r}; use none or slcan_serial")
    uses_qemu_features = spec.network.mode != "none" or spec.can.link != "none" or spec.snapshot.enabled
    if uses_qemu_features and launch.kind != "qemu":
        raise ConfigError(f"{p}: [network], [can] and [snapshot] need launch.kind = \"qemu\"")
    needs_cmdline = net.on_kernel_cmdline or (spec.can.link != "none" and spec.can.kernel_params)
    if needs_cmdline and "-append" not in launch.args:
        raise ConfigError(
            f"{p}: [network]/[can] pass settings on the kernel command line: add \"-append\" to launch.args"
        )
    for port in spec.network.forward_tcp + spec.network.forward_udp:
        if not 0 < port < 65536:
            raise ConfigError(f"{p}: port {port} in network.forward_* is not a TCP/UDP port")
    if spec.console.reset not in RESET_KINDS:
        raise ConfigError(f"{p}: key 'console.reset' is {spec.console.reset!r}; use one of {', '.join(RESET_KINDS)}")
    for key in ("boot_timeout", "exec_timeout"):
        if getattr(spec.console, key) <= 0:
            raise ConfigError(f"{p}: key 'console.{key}' must be > 0 seconds")
    if spec.console.write_chunk < 0 or spec.console.write_gap_ms < 0:
        raise ConfigError(f"{p}: keys 'console.write_chunk' and 'console.write_gap_ms' must be >= 0")


def _is_mac(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 6 and all(len(x) == 2 and all(c in "0123456789abcdefABCDEF" for c in x) for x in parts)


def targets_dir() -> Path:
    """The board files' folder: $HIL_TARGETS, else the project's targets/ (see harness/paths.py)."""
    return resource("targets")


def load_all(directory: Path | None = None) -> dict[str, BoardSpec]:
    directory = directory or targets_dir()
    return {p.stem: load_board(p) for p in sorted(directory.glob("*.toml")) if not p.stem.startswith("lab")}


def find_board(name: str, directory: Path | None = None) -> BoardSpec:
    directory = directory or targets_dir()
    path = directory / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml"))) or "none"
        raise ConfigError(f"no board named {name!r}: {path} does not exist (known boards: {known})")
    return load_board(path)
