"""NetNamespace: a namespace anchored by a child process (no name under /run/netns), entered by
nsenter for commands and by setns() from a helper thread for sockets, gone when the anchor dies.
Needs root (CAP_SYS_ADMIN), as tap boards do; skipped where namespaces cannot be made."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from harness.errors import InfrastructureError
from harness.net.netns import NetNamespace, namespaces_in_use

pytestmark = pytest.mark.spawns


@pytest.fixture
def ns(no_leftovers):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    namespace = NetNamespace("hilunit")
    try:
        yield namespace
    finally:
        namespace.close()


def my_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def test_namespace_is_new_and_has_loopback_up(ns):
    assert ns.inode.startswith("net:[") and ns.inode != my_netns()
    assert ns.inode in namespaces_in_use()
    assert ns.command(["ip", "-o", "link"]) == ["nsenter", f"--net=/proc/{ns.anchor.pid}/ns/net", "--", "ip", "-o",
                                                "link"]  # fmt: skip
    links = subprocess.run(ns.command(["ip", "-o", "link"]), capture_output=True, text=True, timeout=10).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]  # nothing of the host's
    assert "UP" in links.split("<", 1)[1].split(">", 1)[0].split(",")


def test_bridge_and_taps_inside_only(ns):
    ns.add_bridge("hilbr0", "192.168.77.1/24")
    assert ns.add_tap("hilbr0") == "tap0" and ns.add_tap("hilbr0") == "tap1"
    inside = subprocess.run(ns.command(["ip", "-o", "link"]), capture_output=True, text=True, timeout=10).stdout
    assert "hilbr0" in inside and "tap0" in inside and "master hilbr0" in inside
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    assert "hilbr0" not in host


def test_failed_ip_command_is_one_line(ns):
    with pytest.raises(InfrastructureError) as info:
        ns.ip("link", "set", "nosuchdev", "up")
    message = str(info.value)
    assert message.startswith("netns hilunit: ip link set nosuchdev up failed: ") and "\n" not in message


def test_run_enters_from_a_helper_thread(ns):
    caller = my_netns()
    assert ns.run(my_netns) == ns.inode
    assert my_netns() == caller  # the calling thread never moved

    def bound() -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        return s

    server = ns.run(bound)  # a socket keeps its namespace wherever it is used
    try:
        port = server.getsockname()[1]
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))  # the host's loopback is another one
    finally:
        server.close()
    with pytest.raises(KeyError, match="inside"):
        ns.run(lambda: {}["inside"])  # the function's own exception reaches the caller


def test_close_frees_the_namespace(no_leftovers):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    namespace = NetNamespace("hilgone")
    inode = namespace.inode
    namespace.close()
    deadline = time.monotonic() + 5
    while inode in namespaces_in_use() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert inode not in namespaces_in_use()  # the anchor was its only process


def test_namespaces_in_use_includes_ours():
    assert my_netns() in namespaces_in_use()
