"""How the host reaches a board's network, whatever the board is:

- host: the board is a host process (native): it shares the host's loopback;
- user: QEMU user-mode networking; guest ports are forwarded to per-instance host ports on
  127.0.0.1 (so parallel boards never collide); the board reaches host services at 10.0.2.2,
  which QEMU maps to the host's 127.0.0.1;
- tap: a real L2 link: the board's tap sits on a bridge inside a namespace the harness made
  (harness.net.netns); host-side sockets are created inside that namespace.

Suites use one interface: ``tcp_port(i)`` is a port the board may listen on, ``address(port)``
where the host connects to reach it, ``listen()`` a host server the board can reach at
``host_ip``, and ``run(fn)`` to do anything else (scapy) from the host side of the link."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from harness.config.boards import NetworkSpec
from harness.config.ports import LOOPBACK
from harness.errors import InfrastructureError
from harness.net.netns import NetNamespace

T = TypeVar("T")
USER_GUEST_IP, USER_HOST_IP = "10.0.2.15", "10.0.2.2"


def free_ports(count: int, kind: int = socket.SOCK_STREAM, host: str = LOOPBACK) -> list[int]:
    """``count`` different ports free on ``host`` right now: each is held until all are chosen (the
    kernel hands a just-closed port out again), and whoever binds them does so a moment later
    (QEMU's collisions with other processes are retried by the launcher)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket(socket.AF_INET, kind))
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports


def free_port(kind: int = socket.SOCK_STREAM, host: str = LOOPBACK) -> int:
    return free_ports(1, kind, host)[0]


@dataclass
class BoardNet:
    mode: str
    guest_ip: str
    host_ip: str  # the host, as the board sees it
    guest_tcp: list[int] = field(default_factory=list)  # ports the board may listen on
    guest_udp: list[int] = field(default_factory=list)
    forwards: dict[tuple[str, int], int] = field(default_factory=dict)  # (proto, guest port) -> host port
    netns: NetNamespace | None = None
    bridge: str = ""
    tap: str = ""
    netdev_id: str = "n0"
    mac: str = ""  # the board's MAC on its link ("" = QEMU's default)

    # --- what suites use -------------------------------------------------------------------
    def tcp_port(self, index: int = 0) -> int:
        return self.guest_tcp[index]

    def udp_port(self, index: int = 0) -> int:
        return self.guest_udp[index]

    def address(self, guest_port: int, proto: str = "tcp") -> tuple[str, int]:
        """Where the host sends to reach guest_port on the board."""
        if self.mode == "user":
            return ("127.0.0.1", self.forwards[(proto, guest_port)])
        return (self.guest_ip, guest_port)

    def run(self, fn: Callable[[], T]) -> T:
        return self.netns.run(fn) if self.netns else fn()

    def new_socket(self, type_: int = socket.SOCK_STREAM) -> socket.socket:
        """An unconnected host-side socket on the board's link (inside the namespace for tap)."""
        return self.run(lambda: socket.socket(socket.AF_INET, type_))

    def connect(self, guest_port: int, timeout: float = 10.0) -> socket.socket:
        addr = self.address(guest_port)
        return self.run(lambda: socket.create_connection(addr, timeout=timeout))

    def listen(self, type_: int = socket.SOCK_STREAM, backlog: int = 16) -> socket.socket:
        """A host-side server socket the board reaches at (host_ip, its port)."""
        bind_ip = "127.0.0.1" if self.mode in ("host", "user") else self.host_ip

        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, type_)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((bind_ip, 0))
            if type_ == socket.SOCK_STREAM:
                s.listen(backlog)
            return s

        return self.run(make)

    # --- what the launcher uses ------------------------------------------------------------
    def qemu_args(self, device: str, nic: str = "device") -> list[str]:
        if self.mode == "user":
            fwd = "".join(
                f",hostfwd={proto}:127.0.0.1:{hp}-:{gp}" for (proto, gp), hp in sorted(self.forwards.items())
            )
            netdev = f"user,id={self.netdev_id}{fwd}"
        else:
            netdev = f"tap,id={self.netdev_id},ifname={self.tap},script=no,downscript=no"
        if nic == "board":  # the machine's own NIC (mps2-an385's LAN9118): legacy -net nic binds it
            mac = f",macaddr={self.mac}" if self.mac else ""
            return ["-netdev", netdev, "-net", f"nic,netdev={self.netdev_id},model={device}{mac}"]
        mac = f",mac={self.mac}" if self.mac else ""
        return ["-netdev", netdev, "-device", f"{device},netdev={self.netdev_id}{mac}"]

    def static_address(self) -> tuple[str, str] | None:
        """(address/prefix, gateway) a firmware sets itself on a tap link; None where DHCP serves."""
        return (f"{self.guest_ip}/24", self.host_ip) if self.mode == "tap" else None

    def kernel_params(self) -> list[str]:
        if self.mode == "tap":
            return [f"hil.ip={self.guest_ip}/24", f"hil.gw={self.host_ip}"]
        return []


def host_net(ports: int = 8) -> BoardNet:
    """A host-process board: it binds free loopback ports chosen now."""
    tcp, udp = free_ports(ports), free_ports(ports, socket.SOCK_DGRAM)
    return BoardNet(mode="host", guest_ip="127.0.0.1", host_ip="127.0.0.1", guest_tcp=tcp, guest_udp=udp)


def user_net(spec: NetworkSpec) -> BoardNet:
    tcp, udp = free_ports(len(spec.forward_tcp)), free_ports(len(spec.forward_udp), socket.SOCK_DGRAM)
    forwards = {("tcp", g): h for g, h in zip(spec.forward_tcp, tcp, strict=True)}
    forwards |= {("udp", g): h for g, h in zip(spec.forward_udp, udp, strict=True)}
    return BoardNet(mode="user", guest_ip=USER_GUEST_IP, host_ip=USER_HOST_IP, guest_tcp=list(spec.forward_tcp),
                    guest_udp=list(spec.forward_udp), forwards=forwards, mac=spec.mac)


_segments: dict[str, tuple[NetNamespace, int]] = {}


def tap_net(spec: NetworkSpec, instance: str) -> BoardNet:
    """A tap on the segment's bridge (made on first use); guest addresses .10, .11, ... per board."""
    segment = spec.segment or instance
    if segment not in _segments:
        ns = NetNamespace(f"hil-{segment}")
        ns.add_bridge("br0", f"{spec.subnet}.1/24")
        _segments[segment] = (ns, 0)
    ns, count = _segments[segment]
    _segments[segment] = (ns, count + 1)
    tap = ns.add_tap("br0")
    ports = spec.forward_tcp or list(range(7000, 7008))
    udp = spec.forward_udp or list(range(7100, 7108))
    host = spec.host or 10 + count
    return BoardNet(mode="tap", guest_ip=f"{spec.subnet}.{host}", host_ip=f"{spec.subnet}.1", guest_tcp=ports,
                    guest_udp=udp, netns=ns, bridge="br0", tap=tap, mac=_nth_mac(spec.mac, host - 10))


def _nth_mac(base: str, n: int) -> str:
    """The n-th board on a segment: base MAC + n (boards on one bridge need distinct MACs)."""
    if not base:
        return ""
    value = (int(base.replace(":", ""), 16) + n) & (1 << 48) - 1
    return ":".join(f"{value:012x}"[i : i + 2] for i in range(0, 12, 2))


def release(net: BoardNet) -> None:
    """Drop a tap board's namespace when it was the segment's only user (its own segment); on a
    shared segment, drop its tap (a restarted board with a fixed address and MAC gets a new tap:
    the bridge must not keep forwarding to the old one)."""
    for segment, (ns, _count) in list(_segments.items()):
        if ns is net.netns and segment.startswith("inst-"):
            ns.close()
            del _segments[segment]
        elif ns is net.netns and net.tap:
            with contextlib.suppress(InfrastructureError):
                ns.ip("link", "del", net.tap)


def close_segment(segment: str) -> None:
    """Drop a named segment's namespace (its boards are stopped): multi-board tests' bridge."""
    entry = _segments.pop(segment, None)
    if entry:
        entry[0].close()


def close_all_segments() -> None:
    for ns, _ in _segments.values():
        ns.close()
    _segments.clear()
