"""Lab files (targets/lab*.toml): the real devices on a bench, found by stable USB attributes.

A device is identified by what does not change when it is replugged — USB vendor/product id,
serial number, USB location (the physical socket) — never by /dev/ttyACMn, which the kernel
hands out in plug order. Remote devices name their port instead: rfc2217://HOST:PORT (ser2net on
a lab host) or a labgrid place. Each device has a board type (a target in targets/ whose
[launch].kind is "serial", or "generic": any MicroPython on a serial port) and what is lab-only
(how it is found, how it is flashed). Everything else is an override of its board type's spec
(harness/config/boards.py), checked by the same schema: ``tags``, ``console``, ``capabilities``
and ``can`` (a python-can interface + channel: the board's [can] with link "python_can").
``board_spec(device, port)`` is the BoardSpec the harness opens:

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
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.config.boards import (
    BoardSpec,
    CanSpec,
    Capabilities,
    ConsoleSpec,
    ImageSpec,
    SerialLaunch,
    board_files,
    check_board,
    is_lab_file,
    load_board,
    targets_dir,
)
from harness.config.ports import parse_port
from harness.config.schema import check_table, fill, read_toml, unknown_key, want
from harness.errors import ConfigError

GENERIC = "generic"
Flasher = Literal["fs", "esptool", "uf2", "microbit_hex", "none"]
FIRMWARE_FLASHERS = ("esptool", "uf2", "microbit_hex")
DEFAULT_FILES = ["hil_info.py", "hil_fs.py"]
MIN_CHUNK, MAX_CHUNK = 16, 4096
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_LAB_KEYS = ("name", "description", "coordinator")
# device keys whose TOML value is the DeviceSpec field as is (checked against its annotation)
_PLAIN_KEYS = ("description", "board", "port", "flasher", "files", "chunk", "tags", "expect_version", "drive")
_DEVICE_KEYS = ("name", *_PLAIN_KEYS, "match", "firmware", "capabilities", "console", "can", "esptool")
_MATCH_KEYS = ("vid", "pid", "serial", "location")
_CAN_KEYS = ("interface", "channel", "bitrate")


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
class EsptoolOptions:
    """A device's ``esptool = { ... }`` table (flasher "esptool")."""

    chip: str = "esp32"
    offset: int | str | None = None  # where the image goes, e.g. "0x1000" (default: esptool's for the chip)
    baud: int = 460800
    erase: bool = True


@dataclass
class DeviceSpec:
    """A lab device: what is lab-only (how it is found and flashed), plus overrides of its board
    type's spec; ``board_spec(device, port)`` is the board they make."""

    name: str
    lab_path: Path
    description: str = ""
    board: str = GENERIC
    match: UsbMatch | None = None
    port: str = ""  # explicit: /dev/..., rfc2217://HOST:PORT, labgrid://COORDINATOR/PLACE, labgrid:PLACE
    flasher: Flasher = "fs"
    firmware: Path | None = None  # image for esptool / uf2 / microbit_hex (resolved against the lab file)
    files: list[str] | None = None  # firmware_py files to copy (None: DEFAULT_FILES, none for flasher "none")
    chunk: int = 0  # bytes per raw-REPL write when copying files; 0: from the board's heap
    expect_version: str = ""  # e.g. "1.25" or "1.25.0": the board must report this version
    esptool: EsptoolOptions = field(default_factory=EsptoolOptions)
    drive: str = ""  # mount point of the UF2 / MICROBIT drive (default: look for it in /proc/mounts)
    # overrides of the board type's spec (checked keys of its tables), applied by board_spec()
    tags: list[str] = field(default_factory=list)  # added to the board type's tags
    capabilities: dict[str, Any] = field(default_factory=dict)  # [capabilities] keys
    console: dict[str, Any] = field(default_factory=dict)  # [console] keys
    can: dict[str, Any] = field(default_factory=dict)  # [can] interface/channel/bitrate (link python_can)
    base: BoardSpec | None = None  # the board type, loaded

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


# --- loading ---------------------------------------------------------------------------------------
def _check_keys(data: dict, known: tuple[str, ...], where: str, prefix: str = "") -> None:
    for key in data:
        if key not in known:
            raise unknown_key(where, prefix + key, known)


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


def _usb_match(raw: Any, where: str) -> UsbMatch:
    m = want(raw, dict, where, "match", "a table like { vid = \"2e8a\", pid = \"0005\" }")
    _check_keys(m, _MATCH_KEYS, where, "match.")
    if not m:
        raise ConfigError(f"{where}: key 'match' is empty; give vid/pid and serial or location")
    text = check_table(UsbMatch, {k: v for k, v in m.items() if k in ("serial", "location")}, where, "match.")
    return UsbMatch(vid=_usb_id(m["vid"], where, "match.vid") if "vid" in m else None,
                    pid=_usb_id(m["pid"], where, "match.pid") if "pid" in m else None, **text)  # fmt: skip


def _check_port(port: str, where: str) -> None:
    try:
        ref = parse_port(port)
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'port': {exc}") from None
    if ref.scheme == "lab":
        raise ConfigError(f"{where}: key 'port' is {port!r}; a lab device names its own port, not another device")


def _board(name: str, lab_path: Path, where: str) -> BoardSpec:
    if name == GENERIC:
        return generic_board()
    path = lab_path.parent / f"{name}.toml"
    if is_lab_file(path) or not path.exists():
        known = [p.stem for p in board_files(lab_path.parent)]
        raise ConfigError(
            f"{where}: key 'board' is {name!r} but there is no {path}; use \"{GENERIC}\" or a serial target "
            f"(targets here: {', '.join(known) or 'none'})"
        )
    spec = load_board(path)
    if not spec.launch.physical:
        raise ConfigError(
            f"{where}: key 'board' is {name!r}, a {spec.launch.kind} board; use \"{GENERIC}\" or a target "
            f"whose [launch].kind is \"serial\""
        )
    return spec


def generic_board() -> BoardSpec:
    """Any MicroPython on a serial port: default console settings, no capabilities assumed."""
    return BoardSpec(
        name=GENERIC, path=Path("<generic>"), description="serial MicroPython device", default=False,
        image=ImageSpec(builder="none"), launch=SerialLaunch(port="/dev/null"),
    )  # fmt: skip


def _device(raw: Any, index: int, lab_path: Path) -> DeviceSpec:
    where = f"{lab_path}: [[device]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with at least name and match or port")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: key 'name' must be a name of letters, digits, '_', '.', '-' (got {name!r})")
    if is_lab_file(Path(name)):
        raise ConfigError(f"{where}: key 'name' is {name!r}; names starting with 'lab' are lab files, pick another")
    where = f"{lab_path}: device '{name}'"
    _check_keys(raw, _DEVICE_KEYS, where)
    plain = check_table(DeviceSpec, {k: v for k, v in raw.items() if k in _PLAIN_KEYS}, where, keys=_PLAIN_KEYS)
    dev = DeviceSpec(name=name, lab_path=lab_path, **plain)

    if "match" in raw and "port" in raw:
        raise ConfigError(f"{where}: has both 'match' and 'port'; use match for USB devices, port for remote ones")
    if "match" in raw:
        dev.match = _usb_match(raw["match"], where)
    elif "port" in raw:
        _check_port(dev.port, where)
    else:
        raise ConfigError(
            f"{where}: needs 'match' (USB attributes, e.g. match = {{ vid = \"2e8a\", pid = \"0005\" }}) "
            f"or 'port' (rfc2217://HOST:PORT, labgrid://COORDINATOR/PLACE, /dev/...)"
        )

    if "firmware" in raw:
        dev.firmware = (lab_path.parent / want(raw["firmware"], str, where, "firmware", "a file path")).resolve()
    if dev.flasher in FIRMWARE_FLASHERS and dev.firmware is None:
        raise ConfigError(f"{where}: flasher '{dev.flasher}' needs key 'firmware' (the image file to write)")
    if dev.files is None:
        dev.files = [] if dev.flasher == "none" else list(DEFAULT_FILES)
    if not all(dev.files):
        raise ConfigError(f"{where}: key 'files' must be a list of firmware_py file names")
    if dev.flasher == "fs" and not dev.files:
        raise ConfigError(f"{where}: flasher 'fs' copies 'files', but the list is empty; add files or use \"none\"")
    if dev.chunk and not MIN_CHUNK <= dev.chunk <= MAX_CHUNK:
        raise ConfigError(f"{where}: key 'chunk' is {dev.chunk}; use {MIN_CHUNK}..{MAX_CHUNK} bytes (or 0: auto)")
    if not all(_NAME.match(t) for t in dev.tags):
        raise ConfigError(f"{where}: key 'tags' must be a list of names, e.g. [\"esp32\", \"wifi\"] (got {dev.tags!r})")
    dev.capabilities = check_table(Capabilities, raw.get("capabilities", {}), where, "capabilities.")
    dev.console = check_table(ConsoleSpec, raw.get("console", {}), where, "console.")
    if "can" in raw:
        want(raw["can"], dict, where, "can", "a table like { interface = \"socketcan\", channel = \"can0\" }")
        dev.can = check_table(CanSpec, raw["can"], where, "can.", keys=_CAN_KEYS)
        dev.capabilities.setdefault("can", True)
    if "esptool" in raw:
        if dev.flasher != "esptool":
            raise ConfigError(f"{where}: key 'esptool' is only used with flasher = \"esptool\"; remove it")
        dev.esptool = fill(EsptoolOptions, raw["esptool"], where, "esptool.")
    dev.base = _board(dev.board, lab_path, where)
    check_board(board_spec(dev, dev.port or "/dev/null"), where)  # the overrides, with the board type
    return dev


def load_lab(path: Path) -> Lab:
    """Parse and validate one lab file."""
    path = Path(path)
    raw = read_toml(path, "lab file")
    for key in raw:
        if key not in ("lab", "device"):
            raise ConfigError(f"{path}: unknown table [{key}] (known: [lab], [[device]])")
    table = check_table(Lab, raw.get("lab", {}), str(path), "lab.", keys=_LAB_KEYS)
    lab = Lab(**({"name": path.stem} | table), path=path)
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
    return [p for p in sorted((directory or targets_dir()).glob("*.toml")) if is_lab_file(p)]


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
        if candidate.exists() and is_lab_file(candidate):
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


def default_port(lab: Lab, device: DeviceSpec) -> str:
    """The port a device's board opens when nobody resolved it first: its own port, or ``lab:LAB/NAME``
    (the serial launcher finds the USB device by its attributes, see harness/io/usb.py)."""
    return device.port or f"lab:{lab.name}/{device.name}"


def board_spec(device: DeviceSpec, port: str) -> BoardSpec:
    """The board the harness opens for this device: its board type on ``port``, with the device's
    overrides (tags, console, capabilities, CAN link)."""
    base = device.base or generic_board()
    spec = copy.deepcopy(base)
    spec.name = device.name
    spec.description = device.description or base.description
    spec.default = False
    spec.tags = list(dict.fromkeys([*base.tags, *device.tags]))
    spec.image = ImageSpec(builder="none")
    spec.launch = SerialLaunch(port=port)
    spec.console = dataclasses.replace(spec.console, **device.console)
    spec.capabilities = dataclasses.replace(spec.capabilities, **device.capabilities)
    if device.can:
        spec.can = dataclasses.replace(spec.can, link="python_can", **device.can)
    return spec


def lab_boards(paths: list[Path], ports: dict[str, str] | None = None) -> dict[str, BoardSpec]:
    """Every device of these lab files as a board (pytest ``--hil-lab FILE``), by device name;
    ``ports`` (``--hil-port NAME=PORT``) gives ports already resolved (e.g. a leased labgrid place)."""
    ports = dict(ports or {})
    labs = [load_lab(Path(p)) for p in paths]
    boards = {device.name: board_spec(device, ports.pop(device.name, None) or default_port(lab, device))
              for lab, device in select_devices(labs, None)}  # fmt: skip
    if ports:
        raise ConfigError(f"--hil-port {', '.join(ports)}: no such device in {', '.join(map(str, paths))} "
                          f"(devices: {', '.join(boards) or 'none'})")  # fmt: skip
    return boards
