"""A QEMU board's command line, from its target file: the one place it is written down.

The target file's [launch] (binary, machine, args with {kernel} {initrd} {hex} {workdir}
placeholders) plus what the harness adds per instance: settings for the guest on the kernel
command line (hil.ip=/hil.gw= from the network, hil.can=1 from the CAN link), the console, the
network and CAN devices, QMP. The launcher adds the per-instance parts; tests and tools that boot
an image by hand use ``machine_command`` so they run exactly the board's machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.config.boards import BoardSpec, QemuLaunch
from harness.launch.base import _expand

NO_UI = ["-display", "none", "-monitor", "none"]


def machine_args(
    spec: BoardSpec, files: Mapping[str, Path], workdir: Path, kernel_params: Sequence[str] = ()
) -> list[str]:
    """The target's launch.args with placeholders filled and ``kernel_params`` appended to -append."""
    launch = spec.launch
    assert isinstance(launch, QemuLaunch), launch
    values = {k: str(v) for k, v in files.items()} | {"workdir": str(workdir)}
    args = _expand(launch.args, values, spec)
    if kernel_params:
        i = args.index("-append")  # the loader insists on -append when kernel parameters are used
        args[i + 1] = f"{args[i + 1]} {' '.join(kernel_params)}"
    return args


def machine_command(
    spec: BoardSpec, files: Mapping[str, Path], workdir: Path, kernel_params: Sequence[str] = ()
) -> list[str]:
    """binary -M machine, no display or monitor, then the target's args: the board's machine with
    no console, network or QMP yet (add ``-serial ...`` and devices after it)."""
    launch = spec.launch
    assert isinstance(launch, QemuLaunch), launch
    return [launch.binary, "-M", launch.machine, *NO_UI, *machine_args(spec, files, workdir, kernel_params)]
