"""mps2_an385 as a network board (lwIP + mbedTLS over QEMU's LAN9118): the interface comes up by
itself, traffic flows both ways on user and tap links, the MAC comes from the target file, the host
gives entropy and time, an idle board sleeps, Ctrl-C stops running code, and a link that stays
down, a DHCP server that never answers or lwIP running out of its buffers is reported with its
cause, never as a hang."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.board import Board
from harness.config.boards import find_board
from harness.io.repl import ExecTimeout
from harness.net.boardnet import close_all_segments
from tests.conftest import REPO
from tests.integration.test_qemu_x86 import boot, echo_through

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-arm"), reason="needs qemu-system-arm")


@pytest.mark.parametrize("name", ["mps2_an385", "mps2_an385_tap"])
def test_network_comes_up_and_carries_tcp_both_ways(no_leftovers, tmp_path, name):
    with boot(name, tmp_path) as board:
        want_ip = "10.0.2.15" if name == "mps2_an385" else board.net.guest_ip
        assert board.facts.extra["network"].startswith(f"NET {want_ip} ")
        payload = os.urandom(200_000)
        assert echo_through(board, payload) == payload
        mac = board.eval("__import__('network').LAN().config('mac').hex(':')")
        assert mac == board.spec.network.mac  # the chip's EEPROM MAC is the target file's


def test_two_boards_on_one_segment_get_distinct_macs_and_addresses(no_leftovers, tmp_path):
    targets = tmp_path / "targets"
    targets.mkdir()
    text = (REPO / "targets" / "mps2_an385_tap.toml").read_text()
    (targets / "mps2_an385_tap.toml").write_text(text.replace("[network]\n", '[network]\nsegment = "pair"\n'))
    spec = find_board("mps2_an385_tap", targets)
    a = Board(spec, log_dir=tmp_path / "a", log=lambda m: None).start()
    b = Board(spec, log_dir=tmp_path / "b", log=lambda m: None).start()
    try:
        macs = [x.eval("__import__('network').LAN().config('mac')") for x in (a, b)]
        assert macs[0] != macs[1]
        assert a.net.guest_ip != b.net.guest_ip
        assert a.net.netns is b.net.netns  # one bridge: they can reach each other
        assert echo_through(b, b"second board") == b"second board"
        port = a.net.tcp_port(0)
        server = a.spawn(f"import hil_echo\nhil_echo.tcp_server({port})")
        server.wait_for("READY", timeout=30)
        out = b.exec(
            f"import socket\ns = socket.socket()\ns.connect(({a.net.guest_ip!r}, {port}))\n"
            "s.send(b'board to board')\nprint(s.recv(100))\ns.close()"
        )
        assert out.strip() == "b'board to board'"
        server.finish(timeout=30)
    finally:
        a.stop()
        b.stop()
        close_all_segments()  # a named segment outlives its boards until the harness ends


def test_host_entropy_and_wall_clock(no_leftovers, tmp_path):
    with boot("mps2_an385", tmp_path) as board:
        first, second, now = board.eval(
            "(__import__('os').urandom(16), __import__('os').urandom(16), __import__('time').time())"
        )
        assert first != second and len(set(first)) > 4  # random, not a constant seed
        assert abs(now - time.time()) < 5  # the host's clock, read over semihosting at boot


def test_idle_board_sleeps_instead_of_spinning(no_leftovers, tmp_path):
    with boot("mps2_an385", tmp_path) as board:
        pid = board.launcher.proc.pid

        def cpu_seconds() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        c0, t0 = cpu_seconds(), time.monotonic()
        time.sleep(3)
        share = (cpu_seconds() - c0) / (time.monotonic() - t0)
        # the old busy-polling REPL used a whole core; WFI idling costs a few percent (the bench
        # prints the figure); a loaded CI machine may add some, never a core's worth
        assert share < 0.5


def test_ctrl_c_stops_runaway_code_without_a_restart(no_leftovers, tmp_path):
    with boot("mps2_an385", tmp_path) as board:
        pid = board.launcher.proc.pid
        with pytest.raises(ExecTimeout):
            board.exec("while True:\n    pass", timeout=1.5)
        assert board.launcher.proc.pid == pid  # interrupted, not restarted
        assert board.eval("1 + 1") == 2


def test_link_down_is_named(no_leftovers, tmp_path):
    with boot("mps2_an385", tmp_path) as board:
        board.launcher.qmp.cmd("set_link", name=board.net.netdev_id, up=False)
        with pytest.raises(OSError, match="link down"):
            board.exec("import network, hil_net\nnetwork.LAN().active(False)\nhil_net.up(timeout_ms=1500)")


def test_no_dhcp_lease_is_named(no_leftovers, tmp_path):
    # no DHCP server on the harness's tap segment
    with boot("mps2_an385_tap", tmp_path) as board, pytest.raises(OSError, match="no DHCP lease"):
        board.exec("import network, hil_net\nnetwork.LAN().active(False)\nhil_net.up(timeout_ms=1500)")


def _sockets_peerlib():
    """suites/sockets/peerlib.py: the suite's pool note, as the suite's conftest uses it."""
    spec = importlib.util.spec_from_file_location("sockets_peerlib", REPO / "suites" / "sockets" / "peerlib.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_running_out_of_lwip_pools_is_named_and_the_board_recovers(no_leftovers, tmp_path):
    note = _sockets_peerlib().lwip_pool_note
    with boot("mps2_an385", tmp_path) as board:
        assert note(board) == "lwIP pools: none full, none refused"
        # every TCP PCB taken: socket() says ENOMEM, and the note says which pool
        n, err = board.exec("import hil_sock\nkeep, err = hil_sock.fill()\nprint(len(keep), err)").split()
        assert err == "12"  # ENOMEM
        assert f"TCP_PCB ({n} of {n} in use, FULL, " in note(board)
        # closed again, the board carries on: the pool is no longer full and traffic flows
        board.exec("for s in keep:\n    s.close()\nkeep = None")
        assert "FULL" not in note(board)
        assert echo_through(board, b"after the pools ran out") == b"after the pools ran out"


def test_enomem_in_a_socket_case_fails_naming_the_lwip_pool(no_leftovers, tmp_path):
    """The sockets suite's conftest turns a board's ENOMEM into a test failure that names the pool."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("conftest.py", "peerlib.py"):
        (suite / name).write_text((REPO / "suites" / "sockets" / name).read_text())
    (suite / "test_exhaust.py").write_text(
        "def test_many_sockets(dut):\n    dut.exec('import socket\\nkeep = [socket.socket() for _ in range(100)]')\n"
    )
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    cmd = [sys.executable, "-m", "pytest", str(suite), "--board", "mps2_an385", "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    (case,) = list(ET.parse(junit).iter("testcase"))
    failures = [child for child in case if child.tag == "failure"]
    assert failures, proc.stdout[-3000:]  # a test failure, not an error
    assert "ENOMEM" in failures[0].text
    assert "lwIP pools out of room: TCP_PCB (40 of 40 in use, FULL" in failures[0].text
