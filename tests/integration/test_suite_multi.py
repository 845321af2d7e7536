"""Meta-tests of the multi-board suite (suites/multi) on the default boards, as `make run` runs it
(user-mode targets whose pairing instances are put on the tap segment):

- teeth: a board echo that drops the last byte of every chunk (firmware_py/hil_multi_dropecho.py,
  run in place of hil_multi's echo through HIL_MULTI_ECHO) fails the echo cases as test failures,
  not errors, on lwIP (mps2_an385) and Linux (qemu_x86) servers; the real echo passes them;
  a CAN node that swaps two frames of a burst (hil_multi_canreorder.py, HIL_MULTI_CAN) fails the
  burst case on every pairing;
- scheduling: under ``-n 2`` every test of a pairing runs on one worker, and each board instance
  is booted once on it (a pairing's boards stay with its tests);
- reports: the HTML report's pairs view has a row per pairing, and renders in headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from harness.report.html import write_html
from harness.report.timeline import split
from tests.conftest import REPO
from tests.integration.test_html_report import _chromium

SUITE = REPO / "suites" / "multi"
BOARDS = ("mps2_an385", "qemu_x86")
ECHO_CASES = "echo_one_byte or echo_segment_size_edges"

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-arm"), reason="needs qemu-system-arm"),
    pytest.mark.skipif(os.geteuid() != 0, reason="pairing instances sit on a tap segment: root (network namespaces)"),
]


def run_suite(tmp_path: Path, select: str, *extra: str, env: dict | None = None, file: str = "test_multi_tcp.py",
              ) -> dict[str, tuple[str, dict]]:  # fmt: skip
    """Run a file of suites/multi on both boards; each case's verdict and properties from JUnit."""
    xml = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(SUITE / file), "-k", select, "-p", "no:cacheprovider",
           "-q", f"--junitxml={xml}", f"--hil-logs={tmp_path / 'logs'}", *extra]
    cmd += [f"--board={b}" for b in BOARDS]
    if targets := os.environ.get("HIL_TARGETS"):
        cmd.append(f"--targets={targets}")
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=1200)
    assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = {}
    for case in ET.parse(xml).iter("testcase"):
        verdict = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        props["system-out"] = case.findtext("system-out") or ""
        cases[case.get("name")] = (verdict, props)
    return cases


def test_an_echo_that_drops_the_last_byte_is_caught_between_boards(tmp_path):
    good = run_suite(tmp_path / "good", ECHO_CASES)
    bad = run_suite(tmp_path / "bad", ECHO_CASES, env={"HIL_MULTI_ECHO": "hil_multi_dropecho"})
    assert len(good) == len(bad) == 8  # 2 cases x 4 pairings
    assert {name: v for name, (v, _) in good.items()} == dict.fromkeys(good, "passed")
    assert {name: v for name, (v, _) in bad.items()} == dict.fromkeys(bad, "failure")  # failures, not errors
    assert good["test_echo_one_byte[qemu_x86-mps2_an385]"][1]["boards"] == "server=qemu_x86,client=mps2_an385"


def test_a_can_node_that_reorders_two_frames_is_caught(tmp_path):
    select = "burst_arrives_whole_and_in_order"
    good = run_suite(tmp_path / "good", select, file="test_multi_can.py")
    bad = run_suite(tmp_path / "bad", select, file="test_multi_can.py", env={"HIL_MULTI_CAN": "hil_multi_canreorder"})
    assert len(good) == len(bad) == 4
    assert [v for v, _ in good.values()] == ["passed"] * 4
    assert [v for v, _ in bad.values()] == ["failure"] * 4
    # the failing case's evidence timeline has both boards' consoles and the frames each node's bus
    # carried, named by role, with the harness's events
    _, timeline = split(bad["test_can_burst_arrives_whole_and_in_order[mps2_an385-qemu_x86]"][1]["system-out"])
    for source in ("host>server ", "server>host ", "host>client ", "client>host ", "can@", "harness "):
        assert f" {source}" in timeline, (source, timeline[-3000:])


def test_under_xdist_each_pairing_stays_on_one_worker(tmp_path):
    cases = run_suite(tmp_path, "echo_one_byte or server_sees_client_address or refused", "-n", "2")
    by_pair: dict[str, set[str]] = defaultdict(set)
    for name, (verdict, props) in cases.items():
        assert verdict in ("passed", "skipped"), (name, verdict)
        by_pair[name[name.index("[") + 1 : -1]].add(props.get("worker", "?"))
    assert len(by_pair) == 4
    assert all(len(workers) == 1 and "?" not in workers for workers in by_pair.values()), by_pair
    assert len(set().union(*by_pair.values())) == 2  # the pairings were spread over both workers
    # each worker booted each board instance once: one console log per instance, one boot in it
    for log in (tmp_path / "logs").glob("gw*/multi/*.console.log"):
        assert len(re.findall(r"^--- hil \S+ boot ", log.read_text(errors="replace"), re.M)) == 1, log
    # the report's pairs view: a row per pairing with its cases' counts, shown by a real browser
    report = write_html(tmp_path / "junit.xml", tmp_path / "report.html")
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = dom.stdout[dom.stdout.index('<table id="pairs">') :].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(by_pair)
    for pair in by_pair:
        server, client = pair.split("-")  # the boards' names have no "-"
        row = table[table.index(f'data-pairing="server={server},client={client}"') :].split("</tr>")[0]
        passed = sum(1 for name, (v, _) in cases.items() if name.endswith(f"[{pair}]") and v == "passed")
        everything = row.rsplit("<td", 1)[1]  # the row's last cell: all of the pairing's cases
        assert "n-failed" not in row and f">{passed} pass</span>" in everything, (pair, row)
