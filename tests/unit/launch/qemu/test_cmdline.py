"""The QEMU command line comes from the target file alone (harness/launch/qemu/cmdline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.boards import find_board, load_board
from harness.errors import InfrastructureError
from tests.conftest import write_target

FILES = {"kernel": Path("/img/vmlinux"), "initrd": Path("/img/initrd.cpio")}


def test_qemu_x86_machine_is_the_target_files() -> None:
    from harness.launch.qemu.cmdline import machine_command

    spec = find_board("qemu_x86")
    cmd = machine_command(spec, FILES, Path("/w"))
    assert cmd[:7] == ["qemu-system-x86_64", "-M", "q35", "-display", "none", "-monitor", "none"]
    assert cmd[7:] == [a.format(kernel="/img/vmlinux", initrd="/img/initrd.cpio") for a in spec.launch.args]
    append = cmd[cmd.index("-append") + 1]
    assert append == "console=ttyS0 quiet loglevel=0 panic=-1"  # as written in targets/qemu_x86.toml


def test_kernel_params_are_appended_to_the_targets_command_line() -> None:
    from harness.launch.qemu.cmdline import machine_args

    spec = find_board("qemu_x86")
    args = machine_args(spec, FILES, Path("/w"), ["hil.ip=192.168.7.2/24", "hil.gw=192.168.7.1", "hil.can=1"])
    assert args[args.index("-append") + 1].split()[-3:] == ["hil.ip=192.168.7.2/24", "hil.gw=192.168.7.1", "hil.can=1"]


def test_unknown_placeholder_names_the_target_file(tmp_path: Path) -> None:
    from harness.launch.qemu.cmdline import machine_args

    path = write_target(tmp_path, "b", '[launch]\nkind = "qemu"\nmachine = "microbit"\nargs = ["-kernel", "{elf}"]\n')
    with pytest.raises(InfrastructureError, match=r"b\.toml: placeholder \{elf\} in launch arguments is unknown"):
        machine_args(load_board(path), {"kernel": Path("/k")}, tmp_path)
