"""Lab files (targets/lab*.toml): the real devices on a bench, found by stable USB attributes.

A device is identified by what does not change when it is replugged — USB vendor/product id,
serial number, USB location (the physical socket) — never by /dev/ttyACMn, which the kernel
hands out in plug order. Remote devices name their port instead: rfc2217://HOST:PORT (ser2net on
a lab host) or a labgrid place. Each device has a board type (a target in targets/ whose
[launch].kind is "serial", or "generic": any MicroPython on a serial port), a flasher, its
capabilities and, optionally, a CAN interface (python-can interface + channel):

    [lab]
    name = "bench-1"
    [[device]]
    name = "pico-1"
    match = { vid = "2e8a", pid = "0005", serial = "E6614103E7452D2F" }
    flasher = "uf2"
    firmware = "firmware/RPI_PICO-v1.25.0.uf2"   # relative to the lab file

Every mistake is a one-line ConfigError naming the file, the device and the key."""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from harness.config.boards import (
    BoardSpec,
    Capabilities,
    ConsoleSpec,
    ImageSpec,
    LaunchSpec,
    _type_ok,
    load_board,
    targets_dir,
)
from harness.config.ports import parse_port
from harness.errors import ConfigError

GENERIC = "generic"
FLASHERS = ("fs", "esptool", "uf2", "microbit_hex", "none")
FIRMWARE_FLASHERS = ("esptool", "uf2", "microbit_hex")
DEFAULT_FILES = ["hil_info.py", "hil_fs.py"]
MIN_CHUNK, MAX_CHUNK = 16, 4096
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_LAB_KEYS = ("name", "description", "coordinator")
_DEVICE_KEYS = (
    "name", "description", "board", "match", "port", "flasher", "firmware", "files", "chunk",
    "capabilities", "console", "can", "expect_version", "esptool", "drive",
)  # fmt: skip
_MATCH_KEYS = ("vid", "pid", "serial", "location")
_CAN_KEYS = ("interface", "channel", "bitrate")
_ESPTOOL_KEYS = ("chip", "offset", "baud", "erase")
_COMMON_CAN = ("socketcan", "slcan", "pcan", "kvaser", "gs_usb", "virtual")


@dataclass
class UsbMatch:
    """USB attributes a port must have (all given ones must match)."""

    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    location: str | None = None  # USB path, e.g. "1-1.4" (any interface) or "1-1.4:1.0"

    def matches(self, port: Any) -> bool:
        """``port``: a pyserial ListPortInfo."""
        if self.vid is not None and port.vid != self.vid:
            return False
        if self.pid is not None and port.pid != self.pid:
            return False
        if self.serial is not None and (port.serial_number or "") != self.serial:
            return False
        if self.location is not None:
            loc = port.location or ""
            if loc != self.location and loc.split(":")[0] != self.location:
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.vid is not None:
            parts.append(f"vid={self.vid:04x}")
        if self.pid is not None:
            parts.append(f"pid={self.pid:04x}")
        if self.serial is not None:
            parts.append(f"serial={self.serial}")
        if self.location is not None:
            parts.append(f"location={self.location}")
        return " ".join(parts)


@dataclass
class CanSpec:
    interface: str
    channel: str
    bitrate: int = 0


@dataclass
class DeviceSpec:
    name: str
    lab_path: Path
    description: str = ""
    board: str = GENERIC
    match: UsbMatch | None = None
    port: str = ""  # explicit: /dev/..., rfc2217://HOST:PORT, labgrid://COORDINATOR/PLACE, labgrid:PLACE
    flasher: str = "fs"
    firmware: Path | None = None  # image for esptool / uf2 / microbit_hex (resolved against the lab file)
    files: list[str] = field(default_factory=lambda: list(DEFAULT_FILES))  # firmware_py files to copy
    chunk: int = 0  # bytes per raw-REPL write when copying files; 0: from the board's heap
    capabilities: dict[str, Any] = field(default_factory=dict)
    console: dict[str, Any] = field(default_factory=dict)
    can: CanSpec | None = None
    expect_version: str = ""  # e.g. "1.25" or "1.25.0": the board must report this version
    esptool: dict[str, Any] = field(default_factory=dict)
    drive: str = ""  # mount point of the UF2 / MICROBIT drive (default: look for it in /proc/mounts)
    board_spec: BoardSpec | None = None  # the board type, loaded

    @property
    def where(self) -> str:
        return f"{self.lab_path}: device '{self.name}'"

    def identity(self) -> str:
        return self.port or (self.match.describe() if self.match else "?")


@dataclass
class Lab:
    name: str
    path: Path
    description: str = ""
    coordinator: str = ""  # labgrid coordinator HOST:PORT for labgrid:PLACE ports
    devices: list[DeviceSpec] = field(default_factory=list)

    def device(self, name: str) -> DeviceSpec:
        for d in self.devices:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.devices) or "none"
        raise ConfigError(f"{self.path}: no device named {name!r} (devices: {known})")


# --- loading ---------------------------------------------------------------------------------------
def _unknown(where: str, key: str, known: tuple[str, ...] | list[str]) -> ConfigError:
    return ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))}); remove or rename it")


def _check_keys(data: dict, known: tuple[str, ...], where: str, prefix: str = "") -> None:
    for key in data:
        if key not in known:
            raise _unknown(where, prefix + key, known)


def _want(value: Any, kind: type | tuple, where: str, key: str, what: str) -> Any:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, (int, str)))
    if not ok:
        raise ConfigError(f"{where}: key '{key}' must be {what}, got {type(value).__name__} {value!r}")
    return value


def _usb_id(value: Any, where: str, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{1,4}", value):
        number = int(value, 16)
    else:
        raise ConfigError(f"{where}: key '{key}' is {value!r}; write the USB id in hex, e.g. \"2e8a\"")
    if not 0 <= number <= 0xFFFF:
        raise ConfigError(f"{where}: key '{key}' is {value!r}; a USB id is 0000..ffff")
    return number


def _check_port(port: str, where: str) -> None:
    try:
        ref = parse_port(port)
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'port': {exc}") from None
    if ref.scheme == "lab":
        raise ConfigError(f"{where}: key 'port' is {port!r}; a lab device names its own port, not another device")


def _spec_overrides(data: Any, cls: type, where: str, key: str) -> dict[str, Any]:
    """Validate a partial [console] / [capabilities] table against the dataclass it overrides."""
    from harness.config.boards import _HINTS

    _want(data, dict, where, key, "a table")
    known = {f.name: f for f in fields(cls)}
    for name, value in data.items():
        if name not in known:
            raise _unknown(where, f"{key}.{name}", list(known))
        hint = _HINTS.get(str(known[name].type), known[name].type)
        if not _type_ok(value, hint):
            raise ConfigError(
                f"{where}: key '{key}.{name}' must be {known[name].type}, got {type(value).__name__} {value!r}"
            )
    return dict(data)


def _board(name: str, lab_path: Path, where: str) -> BoardSpec:
    if name == GENERIC:
        return generic_board()
    path = lab_path.parent / f"{name}.toml"
    if name.startswith("lab") or not path.exists():
        known = sorted(p.stem for p in lab_path.parent.glob("*.toml") if not p.stem.startswith("lab"))
        raise ConfigError(
            f"{where}: key 'board' is {name!r} but there is no {path}; use \"{GENERIC}\" or a serial target "
            f"(targets here: {', '.join(known) or 'none'})"
        )
    spec = load_board(path)
    if spec.launch.kind != "serial":
        raise ConfigError(
            f"{where}: key 'board' is {name!r}, a {spec.launch.kind} board; use \"{GENERIC}\" or a target "
            f"whose [launch].kind is \"serial\""
        )
    return spec


def generic_board() -> BoardSpec:
    """Any MicroPython on a serial port: default console settings, no capabilities assumed."""
    return BoardSpec(
        name=GENERIC, path=Path("<generic>"), description="serial MicroPython device", default=False,
        image=ImageSpec(builder="none"), launch=LaunchSpec(kind="serial", port="/dev/null"),
    )  # fmt: skip


def _device(raw: Any, index: int, lab_path: Path) -> DeviceSpec:
    where = f"{lab_path}: [[device]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with at least name and match or port")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: key 'name' must be a name of letters, digits, '_', '.', '-' (got {name!r})")
    if name.startswith("lab"):
        raise ConfigError(f"{where}: key 'name' is {name!r}; names starting with 'lab' are lab files, pick another")
    where = f"{lab_path}: device '{name}'"
    _check_keys(raw, _DEVICE_KEYS, where)
    dev = DeviceSpec(name=name, lab_path=lab_path)
    dev.description = _want(raw.get("description", ""), str, where, "description", "a string")
    dev.board = _want(raw.get("board", GENERIC), str, where, "board", "a target name or \"generic\"")

    if "match" in raw and "port" in raw:
        raise ConfigError(f"{where}: has both 'match' and 'port'; use match for USB devices, port for remote ones")
    if "match" in raw:
        m = _want(raw["match"], dict, where, "match", "a table like { vid = \"2e8a\", pid = \"0005\" }")
        _check_keys(m, _MATCH_KEYS, where, "match.")
        if not m:
            raise ConfigError(f"{where}: key 'match' is empty; give vid/pid and serial or location")
        dev.match = UsbMatch(
            vid=_usb_id(m["vid"], where, "match.vid") if "vid" in m else None,
            pid=_usb_id(m["pid"], where, "match.pid") if "pid" in m else None,
            serial=_want(m["serial"], str, where, "match.serial", "a string") if "serial" in m else None,
            location=_want(m["location"], str, where, "match.location", "a string like \"1-1.4\"")
            if "location" in m else None,
        )  # fmt: skip
    elif "port" in raw:
        dev.port = _want(raw["port"], str, where, "port", "a string")
        _check_port(dev.port, where)
    else:
        raise ConfigError(
            f"{where}: needs 'match' (USB attributes, e.g. match = {{ vid = \"2e8a\", pid = \"0005\" }}) "
            f"or 'port' (rfc2217://HOST:PORT, labgrid://COORDINATOR/PLACE, /dev/...)"
        )

    dev.flasher = _want(raw.get("flasher", "fs"), str, where, "flasher", "a string")
    if dev.flasher not in FLASHERS:
        raise ConfigError(f"{where}: key 'flasher' is {dev.flasher!r}; use one of {', '.join(FLASHERS)}")
    if "firmware" in raw:
        dev.firmware = (lab_path.parent / _want(raw["firmware"], str, where, "firmware", "a file path")).resolve()
    if dev.flasher in FIRMWARE_FLASHERS and dev.firmware is None:
        raise ConfigError(f"{where}: flasher '{dev.flasher}' needs key 'firmware' (the image file to write)")
    files = raw.get("files", [] if dev.flasher == "none" else list(DEFAULT_FILES))
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise ConfigError(f"{where}: key 'files' must be a list of firmware_py file names")
    dev.files = files
    if dev.flasher == "fs" and not files:
        raise ConfigError(f"{where}: flasher 'fs' copies 'files', but the list is empty; add files or use \"none\"")
    dev.chunk = _want(raw.get("chunk", 0), int, where, "chunk", "an integer (bytes)")
    if dev.chunk and not MIN_CHUNK <= dev.chunk <= MAX_CHUNK:
        raise ConfigError(f"{where}: key 'chunk' is {dev.chunk}; use {MIN_CHUNK}..{MAX_CHUNK} bytes (or 0: auto)")
    dev.capabilities = _spec_overrides(raw.get("capabilities", {}), Capabilities, where, "capabilities")
    dev.console = _spec_overrides(raw.get("console", {}), ConsoleSpec, where, "console")
    dev.expect_version = _want(raw.get("expect_version", ""), str, where, "expect_version", "a string like \"1.25\"")
    dev.drive = _want(raw.get("drive", ""), str, where, "drive", "a mount point path")
    if "can" in raw:
        c = _want(raw["can"], dict, where, "can", "a table like { interface = \"socketcan\", channel = \"can0\" }")
        _check_keys(c, _CAN_KEYS, where, "can.")
        for key in ("interface", "channel"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise ConfigError(f"{where}: key 'can.{key}' is required (a python-can {key}, e.g. \"socketcan\")")
        _check_can_interface(c["interface"], where)
        dev.can = CanSpec(c["interface"], c["channel"], _want(c.get("bitrate", 0), int, where, "can.bitrate", "an int"))
        dev.capabilities.setdefault("can", True)
    if "esptool" in raw:
        e = _want(raw["esptool"], dict, where, "esptool", "a table like { chip = \"esp32\" }")
        _check_keys(e, _ESPTOOL_KEYS, where, "esptool.")
        dev.esptool = dict(e)
        if dev.flasher != "esptool":
            raise ConfigError(f"{where}: key 'esptool' is only used with flasher = \"esptool\"; remove it")
    dev.board_spec = _board(dev.board, lab_path, where)
    return dev


def _check_can_interface(interface: str, where: str) -> None:
    try:
        from can.interfaces import VALID_INTERFACES
    except ImportError:  # python-can missing: checked when used
        return
    if interface not in VALID_INTERFACES:
        raise ConfigError(
            f"{where}: key 'can.interface' is {interface!r}; use a python-can interface "
            f"(e.g. {', '.join(i for i in _COMMON_CAN if i in VALID_INTERFACES)})"
        )


def load_lab(path: Path) -> Lab:
    """Parse and validate one lab file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such lab file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    for key in raw:
        if key not in ("lab", "device"):
            raise ConfigError(f"{path}: unknown table [{key}] (known: [lab], [[device]])")
    table = raw.get("lab", {})
    where = str(path)
    _want(table, dict, where, "lab", "a table")
    _check_keys(table, _LAB_KEYS, where, "lab.")
    lab = Lab(
        name=_want(table.get("name", path.stem), str, where, "lab.name", "a string"),
        path=path,
        description=_want(table.get("description", ""), str, where, "lab.description", "a string"),
        coordinator=_want(table.get("coordinator", ""), str, where, "lab.coordinator", "HOST:PORT"),
    )
    devices = raw.get("device", [])
    if not isinstance(devices, list):
        raise ConfigError(f"{path}: 'device' must be an array of tables: write [[device]], not [device]")
    for i, entry in enumerate(devices):
        dev = _device(entry, i, path)
        if any(d.name == dev.name for d in lab.devices):
            raise ConfigError(f"{path}: device name {dev.name!r} is used twice; names must be unique")
        ref = parse_port(dev.port) if dev.port else None
        if ref and ref.scheme == "labgrid" and not ref.coordinator and lab.coordinator:
            dev.port = ref.with_coordinator(lab.coordinator).text
        lab.devices.append(dev)
    return lab


def lab_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or targets_dir()).glob("lab*.toml"))


def find_labs(selection: str | None = None, directory: Path | None = None) -> list[Lab]:
    """A lab by path or name (``example`` finds targets/lab-example.toml), or every lab file."""
    directory = directory or targets_dir()
    if selection is None:
        return [load_lab(p) for p in lab_files(directory)]
    path = Path(selection)
    if path.suffix == ".toml" or "/" in selection:
        if not path.exists():
            raise ConfigError(f"no lab file {selection}: check the path")
        return [load_lab(path)]
    for candidate in (directory / f"{selection}.toml", directory / f"lab-{selection}.toml"):
        if candidate.exists() and candidate.stem.startswith("lab"):
            return [load_lab(candidate)]
    known = ", ".join(p.stem for p in lab_files(directory)) or "none"
    raise ConfigError(f"no lab named {selection!r} in {directory} (lab files: {known})")


def select_devices(labs: list[Lab], names: list[str] | None) -> list[tuple[Lab, DeviceSpec]]:
    every = [(lab, d) for lab in labs for d in lab.devices]
    seen: dict[str, Path] = {}
    for lab, d in every:
        if d.name in seen:
            raise ConfigError(f"device name {d.name!r} is in both {seen[d.name]} and {lab.path}; rename one")
        seen[d.name] = lab.path
    if not names:
        if not every:
            raise ConfigError(f"no devices: add [[device]] entries to a lab file in {targets_dir()}")
        return every
    chosen = []
    for name in names:
        found = [(lab, d) for lab, d in every if d.name == name]
        if not found:
            raise ConfigError(f"no device named {name!r} (devices: {', '.join(seen) or 'none'})")
        chosen += found
    return chosen


def board_spec(device: DeviceSpec, port: str) -> BoardSpec:
    """The board the harness opens for this device: its board type on ``port``, with the device's
    console and capability overrides."""
    base = device.board_spec or generic_board()
    spec = copy.deepcopy(base)
    spec.name = device.name
    spec.description = device.description or base.description
    spec.default = False
    spec.image = ImageSpec(builder="none")
    spec.launch = LaunchSpec(kind="serial", port=port)
    for key, value in device.console.items():
        setattr(spec.console, key, value)
    for key, value in device.capabilities.items():
        setattr(spec.capabilities, key, value)
    return spec


def write_target(spec: BoardSpec, directory: Path) -> Path:
    """Write ``spec`` as targets/<name>.toml (for pytest --targets DIR --board NAME)."""
    board = {"name": spec.name, "description": spec.description, "arch": spec.arch, "default": spec.default}
    image = {"builder": spec.image.builder, **spec.image.options}
    launch = {"kind": "serial", "port": spec.launch.port}
    tables = {
        "board": board, "image": image, "launch": launch,
        "console": {f.name: getattr(spec.console, f.name) for f in fields(ConsoleSpec)},
        "capabilities": {f.name: getattr(spec.capabilities, f.name) for f in fields(Capabilities)},
    }  # fmt: skip
    text = tomli_w.dumps(tables)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spec.name}.toml"
    path.write_text(text)
    return path


