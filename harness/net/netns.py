"""Network namespaces the harness makes for tap-mode boards, and nothing else touches.

A namespace is anchored by a child process (`unshare --net sleep`) instead of a name under
/run/netns: when the last process in it exits — the anchor dies with the harness through
PR_SET_PDEATHSIG, even on kill -9 — the kernel frees the namespace with its bridge and taps.
Nothing can be left behind. Host-side sockets for tests are made inside the namespace from a
thread that setns()es into it; a socket keeps its namespace wherever it is used afterwards."""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness import procs
from harness.errors import InfrastructureError

CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


class NetNamespace:
    def __init__(self, name: str) -> None:
        self.name = name
        try:
            self.anchor = procs.spawn(["unshare", "--net", "--", "sleep", "infinity"])
        except FileNotFoundError:
            raise InfrastructureError("unshare not found: install Debian package util-linux") from None
        self.path = f"/proc/{self.anchor.pid}/ns/net"
        self._wait_unshared()
        self.ip("link", "set", "lo", "up")
        self.taps = 0

    def _wait_unshared(self) -> None:
        mine = os.readlink("/proc/self/ns/net")
        for _ in range(200):
            try:
                if os.readlink(self.path) != mine:
                    return
            except FileNotFoundError:
                break
            threading.Event().wait(0.005)
        raise InfrastructureError(f"could not create network namespace {self.name} (needs root or CAP_SYS_ADMIN)")

    @property
    def inode(self) -> str:
        return os.readlink(self.path)

    def command(self, argv: list[str]) -> list[str]:
        """argv run inside the namespace (nsenter execs it: same pid, same process group)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def ip(self, *args: str) -> None:
        proc = subprocess.run(self.command(["ip", *args]), capture_output=True, text=True, timeout=10)
        if proc.returncode:
            raise InfrastructureError(f"netns {self.name}: ip {' '.join(args)} failed: {proc.stderr.strip()}")

    def add_bridge(self, name: str, address: str) -> None:
        self.ip("link", "add", name, "type", "bridge")
        self.ip("addr", "add", address, "dev", name)
        self.ip("link", "set", name, "up")

    def add_tap(self, bridge: str) -> str:
        tap = f"tap{self.taps}"
        self.taps += 1
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "master", bridge, "up")
        return tap

    def run(self, fn: Callable[[], T]) -> T:
        """Call fn in a thread that has entered the namespace (the caller's thread is untouched)."""
        result: list = []

        def enter_and_call() -> None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.name}")
            finally:
                os.close(fd)
            try:
                result.append(("ok", fn()))
            except BaseException as exc:
                result.append(("err", exc))

        thread = threading.Thread(target=enter_and_call, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        kind, value = result[0]
        if kind == "err":
            raise value
        return value

    def close(self) -> None:
        procs.kill(self.anchor, grace=0.5)


def namespaces_in_use() -> set[str]:
    """Network namespace ids held by any process (to prove none of ours outlive us)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.add(os.readlink(entry / "ns" / "net"))
            except OSError:
                pass
    return found
