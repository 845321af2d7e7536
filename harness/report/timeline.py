"""One time-ordered view of a test's evidence: console bytes both ways and harness events (from the
board's journal, harness/report/journal.py), the packets of its pcap and the CAN frames that crossed
its bus, one line each:

    t+0.000000 harness    soft reset mps2_an385
    t+0.001236 host>board \\x05A\\x01
    t+0.003410 board>host R\\x01
    t+0.120554 net        Ether / IP / TCP 10.0.2.2:40122 > 10.0.2.15:7000 S (74 bytes)
    t+0.204113 can        host>board 077 [8] 00 01 02 03 04 05 06 07

Times are seconds since the test began. Console bytes are split into lines at LF (a CR before it
is dropped), non-printable bytes shown as \\xNN escapes. The text keeps its first and last
lines when it would be longer than ``max_lines``, with one "N lines dropped" marker between."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.report.journal import BOARD_TO_HOST, CAN, HARNESS, HOST_TO_BOARD, NET, Entry

TIMELINE_HEADER = ("\n--- hil evidence timeline: t+seconds since the test began; "
                   "host>board, board>host: console bytes; harness: events; net: packets; can: frames ---\n")
MAX_LINES = 2000  # per test: 1000 from its start, 1000 from its end
LINE_CHARS = 400  # one console line longer than this is cut (its length said)
MAX_PACKETS = 50_000  # read from one pcap at most (the rest counted)
SOURCE_WIDTH = 10


@dataclass(frozen=True)
class Line:
    t: float
    source: str
    text: str


def escape_bytes(data: bytes) -> str:
    """Printable ASCII as is, a backslash doubled, everything else as \\xNN (\\t kept)."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F or b == 0x09:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def console_lines(entries: Iterable[Entry]) -> list[Line]:
    """Console chunks as lines: a direction's bytes are joined until LF or the other direction
    speaks; each line carries the time of its first byte. Other entries pass through as lines."""
    lines: list[Line] = []
    pending: dict[str, tuple[float, bytearray]] = {}

    def flush(source: str) -> None:
        if source in pending:
            t, data = pending.pop(source)
            lines.append(Line(t, source, _cut(escape_bytes(bytes(data)))))

    for entry in entries:
        if entry.source not in (HOST_TO_BOARD, BOARD_TO_HOST):
            lines.append(Line(entry.t, entry.source, _event_text(entry)))
            continue
        other = BOARD_TO_HOST if entry.source == HOST_TO_BOARD else HOST_TO_BOARD
        flush(other)  # the other side spoke: its partial line ends here
        rest = bytes(entry.payload)
        while rest:
            head, newline, rest = rest.partition(b"\n")
            _, data = pending.setdefault(entry.source, (entry.t, bytearray()))
            data += head
            if newline:
                if data.endswith(b"\r"):
                    del data[-1:]
                flush(entry.source)
    for source in list(pending):
        flush(source)
    return lines


def _event_text(entry: Entry) -> str:
    if isinstance(entry.payload, bytes):
        return escape_bytes(entry.payload)
    if entry.source == CAN:
        return can_text(entry.payload)
    text = str(entry.payload).replace("\r", "").replace("\n", " | ")
    return "".join(c if c >= " " or c == "\t" else f"\\x{ord(c):02x}" for c in _cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= LINE_CHARS else f"{text[:LINE_CHARS]}... ({len(text)} chars)"


def can_text(msg) -> str:
    """A python-can Message as one line: direction as the host saw it, id, [dlc], data bytes."""
    direction = "board>host" if msg.is_rx else "host>board"
    ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    flags = "".join(f" {name}" for name, on in (("RTR", msg.is_remote_frame), ("FD", msg.is_fd),
                                                 ("BRS", msg.bitrate_switch), ("ERR", msg.is_error_frame)) if on)
    data = "" if msg.is_remote_frame else " " + bytes(msg.data).hex(" ").upper()
    return f"{direction} {ident} [{msg.dlc}]{data}{flags}".rstrip()


def can_lines(messages: Iterable) -> list[Line]:
    return [Line(float(m.timestamp), CAN, can_text(m)) for m in messages]


def pcap_lines(path: Path, shift: float = 0.0) -> list[Line]:
    """One line per packet of a pcap (scapy's summary and the length), at its timestamp plus
    ``shift`` seconds (the capture's clock to the host's wall clock). A missing or unreadable file
    gives one line saying so, not an error: the rest of the timeline still stands."""
    from scapy.config import conf
    from scapy.error import Scapy_Exception
    from scapy.layers import inet, inet6, l2  # noqa: F401 - registers Ethernet and IP for the pcap's link type
    from scapy.utils import PcapReader

    # port numbers, not /etc/services names (the suites' 7000 would read "bbs")
    conf.noenum.add(inet.TCP.sport, inet.TCP.dport, inet.UDP.sport, inet.UDP.dport)

    lines: list[Line] = []
    skipped = 0
    try:
        with PcapReader(str(path)) as reader:
            for packet in reader:
                if len(lines) >= MAX_PACKETS:
                    skipped += 1
                    continue
                text = f"{packet.summary()} ({len(packet)} bytes)"
                lines.append(Line(float(packet.time) + shift, NET, text))
    except (OSError, EOFError, Scapy_Exception) as exc:
        if not lines:
            return [Line(float("-inf"), NET, f"pcap {path}: unreadable: {exc}")]
    if skipped:
        lines.append(Line(lines[-1].t, NET, f"... {skipped} more packets in {path}"))
    return lines


def render(lines: Iterable[Line], start: float, max_lines: int = MAX_LINES, dropped: int = 0) -> str:
    """The timeline text: lines sorted by time (stable: console order kept), ``t+S.UUUUUU`` since
    ``start``, bounded to ``max_lines`` (head and tail kept). ``dropped``: entries the journal's
    cap lost from this test's span (said in the first line)."""
    ordered = sorted(lines, key=lambda line: line.t)
    text = [_format(line, start) for line in ordered]
    if len(text) > max_lines:
        head = max_lines // 2
        tail = max_lines - head
        text = [*text[:head], f"... {len(text) - max_lines} lines dropped ...", *text[-tail:]]
    if dropped:
        text.insert(0, f"... the journal's cap had dropped {dropped} older entries (HIL_JOURNAL_MIB) ...")
    return "\n".join(text) + ("\n" if text else "")


def _format(line: Line, start: float) -> str:
    if line.t == float("-inf"):
        stamp = "t?"
    else:
        offset = line.t - start
        stamp = f"t{'+' if offset >= 0 else '-'}{abs(offset):.6f}"
    return f"{stamp} {line.source:<{SOURCE_WIDTH}} {line.text}"


def labelled(lines: Iterable[Line], label: str) -> list[Line]:
    """One board's lines among several boards' (a multi-board test): its console directions and
    CAN frames name it by ``label`` (its role): ``host>server``, ``server>host``, ``can@server``."""
    names = {HOST_TO_BOARD: f"host>{label}", BOARD_TO_HOST: f"{label}>host", CAN: f"can@{label}"}
    return [Line(line.t, names.get(line.source, line.source), line.text) for line in lines]


def merge(entries: Iterable[Entry], start: float, *, pcap: Path | None = None, pcap_shift: float = 0.0,
          can_messages: Iterable = (), dropped: int = 0, max_lines: int = MAX_LINES,
          boards: Iterable[tuple[str, Iterable[Entry]]] = ()) -> str:  # fmt: skip
    """The journal's entries, the pcap's packets and the CAN frames on one timeline (see render).
    ``boards``: (label, entries) of each board of a multi-board test, whose console lines are put
    together per board (two boards' bytes in one direction are two streams) and labelled."""
    lines = console_lines(entries)
    for label, board_entries in boards:
        lines += labelled(console_lines(board_entries), label)
    if pcap is not None:
        lines += pcap_lines(pcap, pcap_shift)
    lines += can_lines(can_messages)
    return render(lines, start, max_lines, dropped)


SOURCES = (HOST_TO_BOARD, BOARD_TO_HOST, HARNESS, NET, CAN)


def split(system_out: str) -> tuple[str, str]:
    """A test's <system-out>: its console text and its timeline (without the header; "" if none)."""
    console, header, timeline = system_out.partition(TIMELINE_HEADER)
    return (console, timeline) if header else (system_out, "")
