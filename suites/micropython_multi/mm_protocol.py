"""The host side of MicroPython's multi-instance test protocol (tests/run-multitests.py), as data and
one function, independent of what an instance is (a harness board, a CPython process).

"L" numbers cite MicroPython 1.25.0's tests/run-multitests.py, the version the mps2 build fetches.
Each instance runs the test file with APPEND_CODE_TEMPLATE appended (a ``multitest`` class, the
injected globals, ``instanceN()``). The host starts the instances in order, each until it prints
NEXT (L318-362; SET lines there become globals of the instances started after it), then reads all
of them round-robin (L364-420): a BROADCAST line is written to every other instance's stdin,
OUTPUT_METRIC lines are figures, everything else is the instance's output. An instance silent for
the read timeout gets TIMEOUT appended (an error); SKIP from any instance while starting skips the
test. The verdict is the combined output (``--- instanceN ---`` blocks) equal to the .exp file or,
without one, to the same protocol run on CPython instances (L523-536)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

INSTANCE_READ_TIMEOUT_S = 10  # L44: upstream's silence limit per instance

# L46-102, verbatim (the harness checks it against the fetched tree's copy:
# tests/integration/test_suite_micropython_multi.py)
APPEND_CODE_TEMPLATE = """
import sys
class multitest:
    @staticmethod
    def flush():
        try:
            sys.stdout.flush()
        except AttributeError:
            pass
    @staticmethod
    def skip():
        print("SKIP")
        multitest.flush()
        raise SystemExit
    @staticmethod
    def next():
        print("NEXT")
        multitest.flush()
    @staticmethod
    def broadcast(msg):
        print("BROADCAST", msg)
        multitest.flush()
    @staticmethod
    def wait(msg):
        msg = "BROADCAST " + msg
        while True:
            if sys.stdin.readline().rstrip() == msg:
                return
    @staticmethod
    def globals(**gs):
        for g in gs:
            print("SET {{}} = {{!r}}".format(g, gs[g]))
        multitest.flush()
    @staticmethod
    def get_network_ip():
        try:
            ip = nic.ifconfig()[0]
        except:
            try:
                import network
                if hasattr(network, "WLAN"):
                    ip = network.WLAN().ifconfig()[0]
                else:
                    ip = network.LAN().ifconfig()[0]
            except:
                ip = HOST_IP
        return ip
    @staticmethod
    def expect_reboot(resume, delay_ms=0):
        print("WAIT_FOR_REBOOT", resume, delay_ms)
    @staticmethod
    def output_metric(data):
        print("OUTPUT_METRIC", data)

{}

instance{}()
multitest.flush()
"""

# L104-112: output some ports print that a test cannot control
IGNORE_OUTPUT_MATCHES = (
    "libusb: error ",
    "hci_transport_h2_libusb.c",
    "USB Path: ",
    "hci_number_completed_packet",
    "lld_pdu_get_tx_flush_nb HCI packet count mismatch (",
    " ets_task(",
)

_INSTANCE_DEF = re.compile(r"def instance([0-9]+)\(\):")
_REBOOT_BANNER = re.compile(r"^MicroPython v\d+\.\d+\.\d+.* on .*; .* with .*$")  # L441


class Instance(Protocol):
    """One side of a multi-instance test (PyInstance, L132-300)."""

    def start(self, script: bytes) -> None: ...  # start the script and return at once

    def readline(self, timeout: float) -> tuple[str | None, str | None]:
        """(a line without its end, the error text if the code ended with one); (None, None) when
        nothing came within ``timeout``."""
        ...

    def write(self, data: bytes) -> None: ...  # to the running script's stdin

    def is_finished(self) -> bool: ...

    def stop(self) -> None: ...  # end the script if it still runs (L422-424)

    def wait_reboot(self, delay_ms: float) -> bool: ...  # expect_reboot: came back (L430-460)


def instance_count(source: str) -> int:
    """How many instances a test file has (L303-312: the highest ``def instanceN():`` + 1)."""
    n = 0
    for line in source.splitlines():
        m = _INSTANCE_DEF.match(line)
        if m:
            n = max(n, int(m.group(1)) + 1)
    return n


def script(source: bytes, injected_globals: str, entry: str | int) -> bytes:
    """What an instance runs: the file, then the template (L136-143 prepare_script_from_file)."""
    return source + b"\n" + APPEND_CODE_TEMPLATE.format(injected_globals, entry).encode("ascii")


def host_ip_global(source: bytes, ip: str) -> str:
    """L297-302: a test that calls get_network_ip() gets HOST_IP, its fallback address."""
    return f"HOST_IP = '{ip}'\n" if b"get_network_ip" in source else ""


def combined(output: Sequence[Sequence[str]]) -> str:
    """L426-429: the instances' lines in ``--- instanceN ---`` blocks, the text compared."""
    return "".join(f"--- instance{i} ---\n" + "\n".join(lines) + "\n" for i, lines in enumerate(output))


def ignored(line: str) -> bool:
    return any(m in line for m in IGNORE_OUTPUT_MATCHES)


@dataclass
class Outcome:
    error: bool
    skip: bool
    output: str
    metrics: list[str] = field(default_factory=list)
    trace: list[tuple[float, int, str]] = field(default_factory=list)  # (seconds, instance, line)


def run_test(
    source: bytes,
    instances: Sequence[Instance],
    host_ips: Sequence[str],
    read_timeout: float = INSTANCE_READ_TIMEOUT_S,
    poll: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    total_timeout: float | None = None,
) -> Outcome:
    """run_test_on_instances (L288-431). ``host_ips``: each instance's HOST_IP (upstream gives every
    instance the host's address: right for unix-port processes on the host, where HOST_IP is the
    instance's own address; a board's own segment address is that meaning here). ``poll``: how long
    one readline may wait for a line (upstream polls every 0.1 s). ``total_timeout``: a bound on
the whole run (upstream has none: an instance that never stops printing would run forever); past
it the running instances get TIMEOUT, as a silent one does."""
    n = len(instances)
    t0 = clock()
    error = skip = False
    shared = ""  # SET lines of the instances started so far (L341-342)
    output: list[list[str]] = [[] for _ in range(n)]
    metrics: list[str] = []
    trace: list[tuple[float, int, str]] = []

    def globals_for(idx: int) -> str:
        return host_ip_global(source, host_ips[idx]) + shared

    def note(idx: int, line: str) -> None:
        trace.append((round(clock() - t0, 3), idx, line))

    # Start all instances, in order, each until it signals it is ready (L318-362)
    for idx in range(n):
        instance = instances[idx]
        instance.start(script(source, globals_for(idx), idx))
        last_read = clock()
        while True:
            if instance.is_finished():
                break
            out, err = instance.readline(poll)
            if out is None and err is None:
                if clock() > last_read + read_timeout:
                    output[idx].append("TIMEOUT")
                    error = True
                    break
                continue
            last_read = clock()
            if out is not None and not ignored(out):
                note(idx, out)
                if out.startswith("SET "):
                    shared += out[4:] + "\n"
                elif out == "SKIP":
                    skip = True
                    break
                elif out == "NEXT":
                    break
                else:
                    output[idx].append(out)
            if err is not None:
                note(idx, err)
                output[idx].append(err)
                error = True
        if error or skip:
            break

    if not error and not skip:
        # Capture output and wait for all instances to finish (L364-420)
        last_reads = [clock() for _ in range(n)]
        while True:
            running = 0
            for idx in range(n):
                instance = instances[idx]
                if instance.is_finished():
                    continue
                running += 1
                out, err = instance.readline(poll / n)
                if out is None and err is None:
                    if clock() > last_reads[idx] + read_timeout:
                        output[idx].append("TIMEOUT")
                        error = True
                    continue
                last_reads[idx] = clock()
                if out is not None and not ignored(out):
                    note(idx, out)
                    if out.startswith("WAIT_FOR_REBOOT"):
                        _, resume, delay_ms = out.split(" ")
                        if instance.wait_reboot(float(delay_ms)):
                            if not resume.startswith(f"instance{idx}"):
                                raise ValueError(f'resume function must start with "instance{idx}"')
                            instance.start(script(source, globals_for(idx), resume[8:]))
                            last_reads[idx] = clock()
                    if out.startswith("BROADCAST "):
                        for other in instances:
                            if other is not instance:
                                other.write(out.encode("ascii", "replace") + b"\r\n")
                    elif out.startswith("OUTPUT_METRIC "):
                        metrics.append(out.split(" ", 1)[1])
                    else:
                        output[idx].append(out)
                if err is not None:
                    note(idx, err)
                    output[idx].append(err)
                    error = True
            if running and total_timeout is not None and clock() > t0 + total_timeout:
                for idx in range(n):
                    if not instances[idx].is_finished():
                        output[idx].append("TIMEOUT")
                error = True
            if not running or error:
                break

    for instance in instances:  # L422-424
        instance.stop()
    return Outcome(error, skip, combined(output), metrics, trace)


def reboot_banner(line: str) -> bool:
    """A board's "reset friendly REPL" banner (py/pyexec.c), as wait_for_reboot looks for it."""
    return bool(_REBOOT_BANNER.match(line))
