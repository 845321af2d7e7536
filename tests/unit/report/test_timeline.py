"""The evidence timeline: console chunks as lines per direction, events, pcap packets and CAN frames
merged in time order, relative to the test's start, escaped and bounded."""

from __future__ import annotations

import can
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from harness.report.journal import BOARD_TO_HOST, CAN, HARNESS, HOST_TO_BOARD, Entry
from harness.report.timeline import (
    TIMELINE_HEADER,
    Line,
    can_text,
    console_lines,
    escape_bytes,
    merge,
    pcap_lines,
    render,
    split,
)


def test_escape_bytes_keeps_printable_ascii_and_escapes_the_rest():
    assert escape_bytes(b"print('hi')\t") == "print('hi')\t"
    assert escape_bytes(b"\x05A\x01\x04\x80\\") == "\\x05A\\x01\\x04\\x80\\\\"
    assert escape_bytes("é".encode()) == "\\xc3\\xa9"


def test_console_chunks_become_lines_per_direction():
    entries = [
        Entry(1.0, HOST_TO_BOARD, b"\x05A\x01"),
        Entry(1.1, BOARD_TO_HOST, b"R\x01"),
        Entry(1.2, BOARD_TO_HOST, b"\x80\x00\x01"),  # the same line, later chunk: joined
        Entry(1.3, HOST_TO_BOARD, b"print(1)\nprint(2)\x04"),  # the board's partial line ends here
        Entry(1.4, BOARD_TO_HOST, b"OK1\r\n2\r"),
        Entry(1.5, HARNESS, "soft reset fk"),
        Entry(1.6, BOARD_TO_HOST, b"\n\x04>"),
    ]
    lines = sorted(console_lines(entries), key=lambda line: line.t)  # as render orders them (stable)
    assert [(line.t, line.source, line.text) for line in lines] == [
        (1.0, HOST_TO_BOARD, "\\x05A\\x01"),
        (1.1, BOARD_TO_HOST, "R\\x01\\x80\\x00\\x01"),
        (1.3, HOST_TO_BOARD, "print(1)"),
        (1.3, HOST_TO_BOARD, "print(2)\\x04"),
        (1.4, BOARD_TO_HOST, "OK1"),
        (1.4, BOARD_TO_HOST, "2"),  # CR LF split across chunks: the CR goes
        (1.5, HARNESS, "soft reset fk"),
        (1.6, BOARD_TO_HOST, "\\x04>"),
    ]


def test_event_text_is_one_line_without_control_characters():
    lines = console_lines([Entry(1.0, HARNESS, "boot failed:\nno prompt\x1b[0m")])
    assert lines[0].text == "boot failed: | no prompt\\x1b[0m"


def test_can_frames_say_direction_id_dlc_and_data():
    tx = can.Message(arbitration_id=0x77, data=bytes(range(8)), is_extended_id=False, is_rx=False)
    rx = can.Message(arbitration_id=0x1EEEEEEE, is_extended_id=True, is_remote_frame=True, dlc=3, is_rx=True)
    fd = can.Message(arbitration_id=0x12, data=b"\x01" * 12, is_extended_id=False, is_fd=True, bitrate_switch=True)
    assert can_text(tx) == "host>board 077 [8] 00 01 02 03 04 05 06 07"
    assert can_text(rx) == "board>host 1EEEEEEE [3] RTR"
    assert can_text(fd) == "board>host 012 [12] " + " ".join(["01"] * 12) + " FD BRS"


def test_pcap_packets_are_summarised_one_per_line_at_their_time_plus_the_shift(tmp_path):
    syn = Ether() / IP(src="10.0.2.2", dst="10.0.2.15") / TCP(sport=40000, dport=7000, flags="S")
    syn.time = 1000.25
    ack = Ether() / IP(src="10.0.2.15", dst="10.0.2.2") / TCP(sport=7000, dport=40000, flags="SA")
    ack.time = 1000.5
    path = tmp_path / "t.pcap"
    wrpcap(str(path), [syn, ack])
    lines = pcap_lines(path, shift=-990.0)
    assert [line.t for line in lines] == [10.25, 10.5]
    assert "TCP 10.0.2.2:40000 > 10.0.2.15:7000 S" in lines[0].text and lines[0].text.endswith("(54 bytes)")
    assert "10.0.2.15:7000 > 10.0.2.2:40000 SA" in lines[1].text


def test_an_unreadable_pcap_is_one_line_not_an_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a pcap at all")
    (line,) = pcap_lines(bad)
    assert line.source == "net" and "unreadable" in line.text
    assert render([line], start=0.0).startswith("t? net ")


def test_render_orders_by_time_relative_to_the_start_and_keeps_head_and_tail():
    lines = [Line(10.0 + i * 0.001, HARNESS, f"event {i}") for i in range(10)]
    text = render(reversed(lines), start=10.0)
    assert text.splitlines()[0] == "t+0.000000 harness    event 0"
    assert text.splitlines()[-1] == "t+0.009000 harness    event 9"
    bounded = render(lines, start=10.0, max_lines=4).splitlines()
    assert bounded == [
        "t+0.000000 harness    event 0", "t+0.001000 harness    event 1", "... 6 lines dropped ...",
        "t+0.008000 harness    event 8", "t+0.009000 harness    event 9",
    ]  # fmt: skip
    assert render([Line(9.5, HARNESS, "before")], start=10.0) == "t-0.500000 harness    before\n"
    assert render([], start=0.0, dropped=3).startswith("... the journal's cap had dropped 3")


def test_merge_puts_every_source_on_one_timeline(tmp_path):
    pkt = Ether() / IP(src="10.0.2.2", dst="10.0.2.15") / TCP(sport=1, dport=7000, flags="S")
    pkt.time = 5.0  # the capture's clock: shifted by 100 s onto the host's
    wrpcap(str(tmp_path / "t.pcap"), [pkt])
    frame = can.Message(timestamp=105.5, arbitration_id=0x78, data=b"\x01", is_extended_id=False, is_rx=True)
    entries = [
        Entry(104.0, HARNESS, "soft reset fk"),
        Entry(104.5, BOARD_TO_HOST, b"READY\r\n"),
        Entry(105.5, CAN, frame),
        Entry(106.0, HOST_TO_BOARD, b"\x03"),
    ]
    text = merge(entries, start=104.0, pcap=tmp_path / "t.pcap", pcap_shift=100.0)
    assert [line.split()[1] for line in text.splitlines()] == ["harness", "board>host", "net", "can", "host>board"]
    assert text.splitlines()[2].startswith("t+1.000000 net        Ether / IP / TCP")
    assert text.splitlines()[3] == "t+1.500000 can        board>host 078 [1] 01"


def test_split_separates_console_text_and_timeline():
    assert split("console\n" + TIMELINE_HEADER + "t+0.1 harness x\n") == ("console\n", "t+0.1 harness x\n")
    assert split("console only\n") == ("console only\n", "")


def test_a_multi_board_timeline_keeps_each_boards_console_apart_and_names_it_by_role():
    server = [Entry(1.0, HOST_TO_BOARD, b"srv("), Entry(1.3, HOST_TO_BOARD, b")\n"), Entry(1.4, CAN, can.Message(
        arbitration_id=0x12, data=b"\x01", is_extended_id=False, is_rx=True, timestamp=1.4))]
    client = [Entry(1.1, HOST_TO_BOARD, b"cli()\n"), Entry(1.2, BOARD_TO_HOST, b"READY;\n")]
    text = merge([Entry(1.05, HARNESS, "lease x")], 1.0, boards=[("server", server), ("client", client)])
    assert text.splitlines() == [
        "t+0.000000 host>server srv()",  # one line though the client's bytes came in between
        "t+0.050000 harness    lease x",
        "t+0.100000 host>client cli()",
        "t+0.200000 client>host READY;",
        "t+0.400000 can@server board>host 012 [1] 01",
    ]
