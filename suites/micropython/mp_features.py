"""Ask a board what run-tests.py asks a target: run tests/feature_check/*.py through the REPL and
read the answers as run-tests.py does (its detect_test_platform, L248-272, and run_tests, L628-721)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from mp_rules import Features
from mp_run import CRASH

ASM_ARCHES = ("rv32", "thumb", "xtensa")  # L240-245, in this order

# feature flag -> (feature_check file, the exact output that means "present")  (L632-681)
PRESENT_IF: dict[str, tuple[str, str]] = {
    "native": ("native_check.py", "native\n"),
    "int_big": ("int_big.py", "1000000000000000000000000000000000000000000000\n"),
    "bytearray": ("bytearray.py", "bytearray\n"),
    "set_type": ("set_check.py", "{1}\n"),
    "slice": ("slice.py", "slice\n"),
    "async_": ("async_check.py", "async\n"),
    "const": ("const.py", "1\n"),
    "io_module": ("io_module.py", "io\n"),
    "fstring": ("fstring.py", "a=1\n"),
    "complex": ("complex.py", "complex\n"),
    "coverage": ("coverage.py", "coverage\n"),
}


def probe(run: Callable[[str], str], feature_dir: Path, host_byteorder: str = sys.byteorder) -> Features:
    """Features of the board behind ``run`` (source -> its output, ending in CRASH if it raised).

    ``host_byteorder`` stands for run-tests.py's CPython run of byteorder.py (L716-719): CPython
    prints its sys.byteorder."""

    def check(name: str) -> str:
        return run((feature_dir / name).read_text())

    info = check("target_info.py")
    if info.endswith(CRASH):
        raise ValueError(f"cannot detect platform: {info!r}")  # as run-tests.py L251
    platform, arch = info.strip().split()
    asm = next((a for a in ASM_ARCHES if check(f"inlineasm_{a}.py").strip() == a), None)
    flags = {flag: check(file) == present for flag, (file, present) in PRESENT_IF.items()}
    precision = check("float.py")
    return Features(
        platform=platform,
        arch=None if arch == "None" else arch,
        inlineasm_arch=asm,
        revops=check("reverse_ops.py") != "TypeError\n",  # L668-670: only this exact answer skips
        thumb2=asm != "thumb" or check("inlineasm_thumb2.py") == "thumb2\n",
        endian_matches_host=check("byteorder.py") == host_byteorder + "\n",
        float_precision=int(precision) if precision.strip().isdigit() else 0,  # L711-714
        **flags,
    )
