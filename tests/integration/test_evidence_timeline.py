"""A failing test's evidence on one timeline (harness/pytest/evidence.py), on real boards: a CAN case
failed by a broken twin (hil_can_drop) and a socket case failed by one (hil_sock_naive), both on
mps2_an385 (CAN over its UART1, user networking with a per-test pcap). Each failure's JUnit
<system-out> carries the timeline with the console both ways, harness events and its frames or
packets; the passing case of the same run carries none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import can

from harness.report.timeline import TIMELINE_HEADER, split
from tests.conftest import REPO

BOARD = "mps2_an385"
LINE = re.compile(r"^t([+-]\d+\.\d{6}) (\S+)\s+(.*)$")


def run_cases(tmp_path: Path, env_extra: dict[str, str], *args: str) -> dict[str, ET.Element]:
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "HIL_TIMELINE", "HIL_CAN_ECHO",
                                                            "HIL_SOCK_APP", "HIL_CAN_SEED")}  # fmt: skip
    env.update(env_extra)
    cmd = [sys.executable, "-m", "pytest", *args, "--board", BOARD, "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    print(proc.stdout[-3000:])
    return {case.get("name"): case for case in ET.parse(junit).iter("testcase")}


def timeline_of(case: ET.Element) -> list[tuple[float, str, str]]:
    out = case.findtext("system-out") or ""
    _console, timeline = split(out)
    assert timeline, f"no timeline in {case.get('name')}'s system-out: {out[-1500:]}"
    lines = []
    for text in timeline.splitlines():
        found = LINE.match(text)
        assert found, f"not a timeline line: {text!r}"
        lines.append((float(found.group(1)), found.group(2), found.group(3)))
    assert [t for t, _, _ in lines] == sorted(t for t, _, _ in lines)  # one time order
    return lines


def props_of(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_a_failing_can_case_shows_console_frames_and_harness_events(tmp_path, no_leftovers):
    flow = REPO / "suites" / "can" / "test_can_flow.py"
    cases = run_cases(tmp_path, {"HIL_CAN_ECHO": "hil_can_drop"}, str(flow), "-k", "canfdtest_echo or reopen")
    failed, passed = cases[f"test_canfdtest_echo[{BOARD}]"], cases[f"test_reopen_close_without_leaks[{BOARD}]"]
    assert failed.find("failure") is not None and passed.find("failure") is None
    lines = timeline_of(failed)
    sources = {source for _, source, _ in lines}
    assert {"host>board", "board>host", "harness", "can"} <= sources, sources
    texts = [f"{source} {text}" for _, source, text in lines]
    assert any(t.startswith("host>board import hil_can, hil_can_drop") for t in texts)  # what the host sent
    assert any(t.startswith("board>host ECHOED") or "READY" in t for t in texts)  # what the board said
    assert any(t.startswith("harness lease") or t.startswith("harness soft reset") for t in texts)
    # canfdtest's frames both ways: the host's id 0x077, the board's replies 0x078
    assert any(t.startswith("can host>board 077 [8]") for t in texts)
    assert any(t.startswith("can board>host 078 [8]") for t in texts)
    # the frames as python-can's logger wrote them, read back with its reader
    frames = list(can.LogReader(props_of(failed)["can_log"]))
    assert {f.arbitration_id for f in frames} >= {0x77, 0x78} and any(f.is_rx for f in frames)
    assert TIMELINE_HEADER not in (passed.findtext("system-out") or "")  # passing: no timeline by default


def test_a_failing_socket_case_shows_console_packets_and_harness_events(tmp_path, no_leftovers):
    parser = REPO / "suites" / "sockets" / "test_msgparser.py"
    cases = run_cases(tmp_path, {"HIL_SOCK_APP": "hil_sock_naive"}, str(parser), "-k",
                      "split_at_every_byte_boundary and len")  # fmt: skip
    (case,) = cases.values()
    assert case.find("failure") is not None
    lines = timeline_of(case)
    sources = {source for _, source, _ in lines}
    assert {"host>board", "board>host", "harness", "net"} <= sources, sources
    texts = [f"{source} {text}" for _, source, text in lines]
    assert any(t.startswith("host>board import hil_sock_naive") for t in texts)
    assert any(t.startswith("board>host IndexError") for t in texts)  # the naive parser's crash, as said
    assert any(t.startswith("harness lease") or t.startswith("harness soft reset") for t in texts)
    assert props_of(case)["pcap"].endswith(".pcap")
    # the pcap's clock mapped onto the host's: the host connects only once the board said READY,
    # so its SYN to port 7000 must come after that line (packets may show a few ms late, never early)
    ready = next(i for i, t in enumerate(texts) if t.startswith("board>host") and "READY" in t)
    syn = next(i for i, t in enumerate(texts) if t.startswith("net") and "> 10.0.2.15:7000 S" in t)
    assert ready < syn, "\n".join(texts)
