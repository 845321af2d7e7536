"""Packet-level peer for the tap link (packetdrill's idea, with scapy): hand-made TCP segments to
the board, and a capture of everything the board sends back.

The namespace's own kernel also has a TCP stack: had we injected from its address (the bridge's
.1), it would answer the board's SYN-ACKs with RSTs. Instead the peer impersonates a host at a
spare address of the segment (FAKE_HOST, .250) with its own MAC: it answers ARP for it, so the
board sends to that MAC, and the kernel drops those frames (not its MAC, not its address) without
resetting anything. No iptables/nft rule is needed (neither is installed here).

Frames go through AF_PACKET sockets opened on the bridge inside the board's namespace
(``dut.net.run``); a reader thread records every frame (the capture the tests check) and answers
ARP. ``save(path)`` writes the capture, both directions, as a pcap.

The board's virtio NIC hands the host TCP segmentation offload (GSO) super-frames: one captured
frame may stand for several wire segments. The capture socket asks for the virtio-net header
(PACKET_VNET_HDR), so each frame carries ``gso_size``: the size of the wire segments it will be cut
into (0: not a GSO frame)."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

from scapy.all import ARP, IP, TCP, Ether, Raw, wrpcap

FAKE_MAC = "02:00:00:00:00:fa"
ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC, PACKET_VNET_HDR = 263, 1, 1, 15
VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset


def flags(pkt) -> str:
    return str(pkt[TCP].flags)


def payload(pkt) -> bytes:
    return bytes(pkt[TCP].payload) if Raw in pkt else b""


class RawLink:
    def __init__(self, net) -> None:
        self.net = net
        self.fake_ip = net.host_ip.rsplit(".", 1)[0] + ".250"
        self.sock, self.out = net.run(self._open)
        self.log: list = []  # every frame, both directions, in order (for the pcap)
        self.rx: list = []  # frames received (the board's)
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hil-rawtcp")
        self._thread.start()
        self.board_mac = self._resolve()

    def _open(self) -> tuple[socket.socket, socket.socket]:
        """Inside the namespace: a promiscuous capture socket with virtio-net headers, and a plain
        one to send frames."""
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        cap.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        cap.bind((self.net.bridge, ETH_P_ALL))
        index = socket.if_nametoindex(self.net.bridge)
        cap.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b""))
        out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        out.bind((self.net.bridge, 0))
        return cap, out

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                raw, info = self.sock.recvfrom(65536 + VNET_HDR.size)
            except OSError:
                return
            if info[2] == socket.PACKET_OUTGOING:  # our own frames (logged when sent)
                continue
            _flags, gso_type, _hl, gso_size, _cs, _co = VNET_HDR.unpack_from(raw)
            pkt = Ether(raw[VNET_HDR.size :])
            pkt.time = time.time()
            pkt.gso_size = gso_size if gso_type else 0
            if ARP in pkt and pkt[ARP].op == 1 and pkt[ARP].pdst == self.fake_ip:
                self._send(Ether(src=FAKE_MAC, dst=pkt[ARP].hwsrc) / ARP(
                    op=2, hwsrc=FAKE_MAC, psrc=self.fake_ip, hwdst=pkt[ARP].hwsrc, pdst=pkt[ARP].psrc))  # fmt: skip
            with self.cond:
                self.rx.append(pkt)
                self.log.append(pkt)
                self.cond.notify_all()

    def _send(self, frame) -> None:
        frame.time = time.time()
        with self.cond:
            self.log.append(frame)
        self.out.send(bytes(frame))

    def _resolve(self) -> str:
        mark = self.mark()
        self._send(Ether(src=FAKE_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=FAKE_MAC, psrc=self.fake_ip,
                                                                      pdst=self.net.guest_ip))  # fmt: skip
        reply = self.expect(lambda p: ARP in p and p[ARP].op == 2 and p[ARP].psrc == self.net.guest_ip, mark, 10)
        return reply[ARP].hwsrc

    def send_ip(self, pkt) -> None:
        self._send(Ether(src=FAKE_MAC, dst=self.board_mac) / pkt)

    def mark(self) -> int:
        with self.cond:
            return len(self.rx)

    def expect(self, pred, since: int, timeout: float = 10.0):
        """The first received frame after ``since`` (a mark) matching pred."""
        return self.expect_at(pred, since, timeout)[1]

    def expect_at(self, pred, since: int, timeout: float = 10.0):
        """(index, frame) of the first received frame after ``since`` matching pred."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.rx)):
                    if pred(self.rx[i]):
                        return i, self.rx[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "; ".join(p.summary() for p in self.rx[since:][-8:]) or "nothing"
                    raise AssertionError(f"no matching frame from the board within {timeout:g} s (saw: {seen})")
                self.cond.wait(left)

    def frames(self, since: int, pred=lambda p: True) -> list:
        with self.cond:
            return [p for p in self.rx[since:] if pred(p)]

    def save(self, path) -> None:
        with self.cond:
            frames = list(self.log)
        if frames:
            wrpcap(str(path), frames)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        self.out.close()


class RawConn:
    """One hand-driven TCP connection from FAKE_HOST to a port on the board. No options beyond
    MSS are offered (no window scaling, SACK or timestamps), so sequence and window arithmetic in
    the assertions is plain."""

    def __init__(self, link: RawLink, dport: int, sport: int, isn: int = 1_000_000) -> None:
        self.link, self.dport, self.sport, self.isn = link, dport, sport, isn
        self.snd_nxt = isn
        self.irs = self.rcv_nxt = 0

    def from_board(self, pkt) -> bool:
        return (TCP in pkt and pkt[IP].src == self.link.net.guest_ip and pkt[TCP].sport == self.dport
                and pkt[TCP].dport == self.sport)  # fmt: skip

    def send(self, flag: str, data: bytes = b"", seq: int | None = None, ack: int | None = None,
             window: int = 65535, options=None) -> None:  # fmt: skip
        seq = self.snd_nxt if seq is None else seq
        ack = self.rcv_nxt if ack is None else ack
        tcp = TCP(sport=self.sport, dport=self.dport, flags=flag, seq=seq & 0xFFFFFFFF,
                  ack=ack & 0xFFFFFFFF if "A" in flag else 0, window=window, options=options or [])  # fmt: skip
        self.link.send_ip(IP(src=self.link.fake_ip, dst=self.link.net.guest_ip) / tcp / data if data else
                          IP(src=self.link.fake_ip, dst=self.link.net.guest_ip) / tcp)  # fmt: skip

    def expect(self, pred, since: int, timeout: float = 10.0):
        return self.link.expect(lambda p: self.from_board(p) and pred(p), since, timeout)

    def handshake(self, window: int = 65535, mss: int = 1460, final_window: int | None = None):
        mark = self.link.mark()
        self.send("S", seq=self.isn, window=window, options=[("MSS", mss)])
        synack = self.expect(lambda p: flags(p) == "SA", mark)
        assert synack[TCP].ack == self.isn + 1, synack.summary()
        self.irs = synack[TCP].seq
        self.rcv_nxt = self.irs + 1
        self.snd_nxt = self.isn + 1
        self.send("A", window=window if final_window is None else final_window)
        return synack

    def send_data(self, data: bytes, seq: int | None = None, window: int = 65535) -> None:
        """Data at seq (default: the next byte); advances snd_nxt when it extends the stream."""
        seq = self.snd_nxt if seq is None else seq
        self.send("PA", data, seq=seq, window=window)
        self.snd_nxt = max(self.snd_nxt, seq + len(data))

    def expect_ack(self, ack: int, since: int, timeout: float = 10.0):
        return self.expect(lambda p: "A" in flags(p) and "R" not in flags(p) and p[TCP].ack == ack, since, timeout)

    def receive(self, n: int, window: int = 65535, timeout: float = 20.0, since: int | None = None):
        """Read n bytes of the board's stream (frames after ``since``, default: from now), acking
        cumulatively as segments arrive; returns the data and the data frames seen (retransmissions
        included)."""
        data = bytearray()
        segments: list = []
        since = self.link.mark() if since is None else since
        deadline = time.monotonic() + timeout
        while len(data) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"board sent {len(data)} of {n} bytes within {timeout:g} s"
            i, seg = self.link.expect_at(lambda p: self.from_board(p) and len(payload(p)) > 0, since, left)
            since = i + 1
            segments.append(seg)
            offset = (seg[TCP].seq - self.rcv_nxt) & 0xFFFFFFFF
            body = payload(seg)
            if offset == 0:  # in order (a retransmission of older data has offset >= 2**31)
                data += body
                self.rcv_nxt += len(body)
                self.send("A", window=window)
        return bytes(data), segments
