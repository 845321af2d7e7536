"""Verdicts of MicroPython's own run-multitests.py against suites/micropython_multi's, file by file.

Boots the boards with the harness on one tap segment (MultiPool, as the duts fixture does), hands
each board's console pty to run-multitests.py (pyboard.py opens it as a serial device, -i pyb:PTY),
and runs run-multitests.py inside the segment's namespace, in both instance orders. Instances:
``mps2`` (mps2_an385_tap over pyboard.py), ``qemu_x86`` (qemu_x86_tap over pyboard.py) and
``unix`` (the venv's unix-port ``micropython`` as a process on the segment's host side, where
run-multitests.py's get_host_ip() finds the bridge address once the namespace has a default route).
With ``--junit`` (a harness run of suites/micropython_multi on the same boards) it prints both.

    python bench/compare_run_multitests.py --pair mps2,unix --pair unix,mps2 --pair mps2,mps2.2 \\
        --pair mps2,qemu_x86 --junit hil-out/mpmulti/junit.xml
    python bench/compare_run_multitests.py --pair unix,unix --junit hil-out/mpmulti/junit.xml

``mps2.2`` is a second mps2_an385_tap; a unix instance stands for qemu_x86 in the harness column."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "suites" / "micropython"))

from mp_tree import tests_dir  # noqa: E402

from harness.lab.pool import BoardPool  # noqa: E402
from harness.net.netns import NetNamespace  # noqa: E402
from harness.pytest.multi import MultiPool  # noqa: E402

BOARDS = {"mps2": "mps2_an385_tap", "qemu_x86": "qemu_x86_tap"}
VERDICT = re.compile(r"^(multi_net/\S+\.py) on (\S+): (pass|skip|FAIL)", re.M)
RUN_TIMEOUT = 1800


def boot(pool: MultiPool, kind: str):
    """``mps2`` is mps2_an385_tap.1, ``mps2.2`` a second one (a pairing of two of a kind)."""
    name, _, n = kind.partition(".")
    instance = f"{BOARDS[name]}.{n or 1}"
    spec = pool.spec(instance)
    if spec.console.chardev != "pty":  # pyboard.py opens a serial device: give the board a pty
        spec = dataclasses.replace(spec, console=dataclasses.replace(spec.console, chardev="pty"))
    pool.pool.extra[instance] = spec
    board = pool.get(instance)
    board.exec("print(1)")
    return board


def run_upstream(tests: Path, files: list[str], instances: list[str], ns) -> tuple[dict[str, str], str]:
    env = {**os.environ, "MICROPY_MICROPYTHON": str(ROOT / ".venv" / "bin" / "micropython"),
           "MICROPY_CPYTHON3": sys.executable}  # fmt: skip
    argv = [sys.executable, str(tests / "run-multitests.py"), *[a for i in instances for a in ("-i", i)], *files]
    try:
        done = subprocess.run(ns.command(argv), cwd=tests, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, errors="replace")  # fmt: skip
        text = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text += "\nrun-multitests.py TIMEOUT"
    return {m.group(1): m.group(3) for m in VERDICT.finditer(text)}, text


def harness_verdicts(junit: Path) -> dict[tuple[str, str], str]:
    """(pairing id, test path) -> pass/skip/FAIL/xfail from a harness run's JUnit file."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        m = re.search(r"\[(.+?)-(multi_net/\S+\.py)\]", case.get("name", ""))
        if not m:
            continue
        verdict = "pass"
        for child in case:
            if child.tag == "skipped":
                verdict = "xfail" if "xfail" in (child.get("type") or "") + (child.get("message") or "") else "skip"
            elif child.tag in ("failure", "error"):
                verdict = "FAIL"
        out[(m.group(1), m.group(2))] = verdict
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", default=[], help="instance0,instance1 of mps2/qemu_x86/unix")
    parser.add_argument("--junit", type=Path, help="a harness run's JUnit file of suites/micropython_multi")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "hil-compare-multitests")
    parser.add_argument("files", nargs="*", help="tests/multi_net files (default: all)")
    args = parser.parse_args()
    pairs = [tuple(p.split(",")) for p in args.pair] or [("mps2", "unix"), ("unix", "mps2")]
    tests = tests_dir()
    files = args.files or sorted(str(p.relative_to(tests)) for p in (tests / "multi_net").glob("*.py"))
    kinds = sorted({k for p in pairs for k in p if k != "unix"})
    parent = BoardPool(args.log, log=lambda m: print(f"hil: {m}", file=sys.stderr))
    pool = MultiPool(parent, kinds=sorted({BOARDS[k.partition(".")[0]] for k in kinds}))
    results: dict[tuple[str, ...], dict[str, str]] = {}
    own_ns = None
    try:
        boards = {k: boot(pool, k) for k in kinds}
        if boards:
            ns = next(iter(boards.values())).net.netns
            # run-multitests.py's get_host_ip() connects a UDP socket to 8.8.8.8: a default route makes
            # it find the bridge's address (the unix instance's address on the segment), not 127.0.0.1
            subprocess.run(ns.command(["ip", "route", "replace", "default", "dev", "br0"]), check=True, timeout=10)
        else:  # unix with unix: a namespace of their own (loopback; the tests' fixed ports are theirs)
            ns = own_ns = NetNamespace("compare-multitests")
        for pair in pairs:
            for k in pair:
                if k in boards:
                    boards[k].console.transport.close()  # pyboard.py opens the port exclusively
            instances = [f"pyb:{boards[k].console.transport.name}" if k in boards else "micropython" for k in pair]
            verdicts, text = run_upstream(tests, files, instances, ns)
            if not verdicts and "could not enter raw repl" in text:
                verdicts = dict.fromkeys(files, "no-drive")  # pyboard.py's soft reset (see the README)
            (args.log / f"run-multitests-{'-'.join(pair)}.txt").write_text(text)
            results[pair] = verdicts
    finally:
        pool.stop_all()
        if own_ns is not None:
            own_ns.close()
    harness = harness_verdicts(args.junit) if args.junit else {}
    width = max(map(len, files)) + 2
    header = f"{'test':<{width}}" + "".join(f"{'|'.join(p):>18}" for p in pairs)
    print(header + ("   harness (same order, qemu_x86 for unix)" if harness else ""))
    for f in files:
        row = f"{f:<{width}}" + "".join(f"{results[p].get(f, '-'):>18}" for p in pairs)
        if harness:
            ids = ["-".join(BOARDS.get(k.partition(".")[0], BOARDS["qemu_x86"]) for k in p) for p in pairs]
            row += "   " + " ".join(f"{harness.get((i, f), '-'):>6}" for i in ids)
        print(row)


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as make runs them: the timed Python processes keep their bytecode
    main()
