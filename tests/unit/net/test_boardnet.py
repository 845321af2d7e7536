"""BoardNet as the launcher sees it: QEMU's network arguments (an added NIC or the machine's own),
MACs for boards sharing a segment, and the address a firmware with its own stack sets itself.
Pure functions: no QEMU here (tests/test_qemu_x86.py and tests/test_board.py boot real boards)."""

from __future__ import annotations

import pytest

from harness.config.boards import NetworkSpec
from harness.net.boardnet import BoardNet, _nth_mac, user_net


def user(mac: str = "") -> BoardNet:
    return BoardNet(mode="user", guest_ip="10.0.2.15", host_ip="10.0.2.2", guest_tcp=[7000],
                    forwards={("tcp", 7000): 41000, ("udp", 7100): 41001}, mac=mac)


def tap(mac: str = "") -> BoardNet:
    return BoardNet(mode="tap", guest_ip="192.168.77.11", host_ip="192.168.77.1", tap="hiltap3", mac=mac)


USER_NETDEV = "user,id=n0,hostfwd=tcp:127.0.0.1:41000-:7000,hostfwd=udp:127.0.0.1:41001-:7100"
TAP_NETDEV = "tap,id=n0,ifname=hiltap3,script=no,downscript=no"


def test_board_nic_is_bound_with_legacy_net_nic():
    """A machine's own NIC (mps2-an385's LAN9118) is not -device'able: -net nic,model= binds it."""
    assert user("52:54:00:a3:85:10").qemu_args("lan9118", "board") == [
        "-netdev", USER_NETDEV, "-net", "nic,netdev=n0,model=lan9118,macaddr=52:54:00:a3:85:10"]
    assert tap().qemu_args("lan9118", "board") == ["-netdev", TAP_NETDEV, "-net", "nic,netdev=n0,model=lan9118"]


def test_added_nic_is_a_device_with_optional_mac():
    assert user().qemu_args("virtio-net-pci") == ["-netdev", USER_NETDEV, "-device", "virtio-net-pci,netdev=n0"]
    assert tap("52:54:00:12:34:56").qemu_args("virtio-net-pci", "device") == [
        "-netdev", TAP_NETDEV, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"]


def test_user_net_carries_the_target_mac():
    spec = NetworkSpec(mode="user", mac="52:54:00:a3:85:10", forward_tcp=[7000])
    net = user_net(spec)
    assert net.mac == "52:54:00:a3:85:10" and set(net.forwards) == {("tcp", 7000)}
    assert net.qemu_args("lan9118", "board")[-1].endswith(",macaddr=52:54:00:a3:85:10")


@pytest.mark.parametrize(
    ("base", "n", "expected"),
    [
        ("52:54:00:a3:85:10", 0, "52:54:00:a3:85:10"),
        ("52:54:00:a3:85:10", 3, "52:54:00:a3:85:13"),
        ("52:54:00:a3:85:ff", 1, "52:54:00:a3:86:00"),  # carries into the next byte
        ("52:54:00:FF:FF:FF", 2, "52:54:01:00:00:01"),  # upper case in, lower case out
        ("ff:ff:ff:ff:ff:ff", 1, "00:00:00:00:00:00"),  # wraps within 48 bits
        ("", 5, ""),  # no base: QEMU's default MAC
    ],
)
def test_nth_mac(base, n, expected):
    assert _nth_mac(base, n) == expected


def test_static_address_only_on_tap():
    """Tap segments have no DHCP server: the firmware gets .1x/24 and the host side as gateway."""
    assert tap().static_address() == ("192.168.77.11/24", "192.168.77.1")
    assert user().static_address() is None  # QEMU's user-mode stack serves DHCP
    assert BoardNet(mode="host", guest_ip="127.0.0.1", host_ip="127.0.0.1").static_address() is None


def test_ports_chosen_together_are_all_different():
    """The kernel hands a just-closed ephemeral port out again: ports picked one at a time for one
    board's forwards could collide (QEMU then refuses the second hostfwd rule)."""
    import socket

    from harness.net.boardnet import free_ports

    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        ports = free_ports(64, kind)
        assert len(set(ports)) == 64 and all(p > 0 for p in ports)
