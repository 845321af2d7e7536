"""CAN over a second UART for boards without a CAN controller (mps2_an385).

The board runs an SLCAN speaker on its UART1 (firmware_py/hil_can_slcan.py + hil_can_cmsdk.py);
QEMU maps that UART to a TCP server, exactly like qemu_x86's ttyS1, so the host side is the
harness's existing SlcanLink (python-can slcan over socket://). The only thing missing in the
harness is a target-file way to say "CAN link, but no kernel command line": targets.py requires
"-append" in launch.args for [can], and the launcher appends hil.can=1 there.

Until the harness grows ``[can] kernel_params = false`` (a small patch to targets.py and
launchers.py, in the CAN issue's report), ``can_target()`` gives the board a CAN link with an empty
``-append`` (QEMU ignores a command line for an M-profile ELF), so the unmodified harness boots it
with the link wired; once the key exists it is used instead:

    directory = write_can_targets(tmp_path)      # every target, mps2_an385 with [can]
    pytest suites/can --targets DIR --board mps2_an385
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from harness.targets import CanSpec, load_board, targets_dir

UART_CAN_BOARDS = ("mps2_an385",)


def kernel_params_supported() -> bool:
    """Does this harness know ``[can] kernel_params`` (the patch below, once applied)?"""
    return "kernel_params" in {f.name for f in fields(CanSpec)}


def can_target(name: str = "mps2_an385", source: Path | None = None, bitrate: int = 500000) -> dict[str, Any]:
    """The target file of ``name`` as a dict, with an SLCAN link on its second serial port."""
    path = source or targets_dir() / f"{name}.toml"
    data = tomllib.loads(path.read_text())
    data.setdefault("capabilities", {})["can"] = True
    data["can"] = {"link": "slcan_serial", "bitrate": bitrate}
    if kernel_params_supported():
        data["can"]["kernel_params"] = False
    else:
        args = data.setdefault("launch", {}).setdefault("args", [])
        if "-append" not in args:
            args += ["-append", ""]  # no kernel: QEMU ignores it for an M-profile ELF
    return data


def dump_toml(data: dict[str, dict[str, Any]]) -> str:
    return tomli_w.dumps(data)


def write_can_targets(directory: Path, boards: tuple[str, ...] = UART_CAN_BOARDS, source: Path | None = None) -> Path:
    """A targets directory: every board file of ``source`` (default: targets/) as it is, the
    UART-CAN boards with their CAN link. Returns the directory (for ``--targets``)."""
    source = source or targets_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.toml")):
        text = dump_toml(can_target(path.stem, path)) if path.stem in boards else path.read_text()
        (directory / path.name).write_text(text)
    for name in boards:
        load_board(directory / f"{name}.toml")  # fail here, in one line, if the harness rejects it
    return directory
