"""The CAN suite (suites/can) catches broken firmware, and its paths work end to end:

- its canfdtest echo case passes against the board's echo app and fails, naming the first lost
  frame, against broken twins of the app (HIL_CAN_ECHO=hil_can_drop, ...: tests/integration/test_suite_can.py);
- mps2_an385 gets a CAN link on its UART1 (its target file's [can]: a second -serial that QEMU maps to
  TCP, an SLCAN speaker in firmware_py on the board) and the suite's cases pass there;
- expected failures name real tests; a bench's python_can link opens the interface it names."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from tests.conftest import REPO

SUITE = REPO / "suites" / "can"


def test_expected_failures_name_real_tests():
    data = tomllib.loads((SUITE / "expected_failures.toml").read_text())
    defined = set()
    for path in SUITE.glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.M))
    assert data, "no expected failures listed"
    for board, tests in data.items():
        assert board == "*" or (REPO / "targets" / f"{board}.toml").exists(), board
        for name, reason in tests.items():
            assert name in defined, f"[{board}] {name}: no such test in suites/can"
            assert len(reason) > 40, f"[{board}] {name}: say why"


def test_cases_count_and_marks():
    # at least 20 cases, every one needing the board's CAN capability
    names = []
    for path in sorted(SUITE.glob("test_*.py")):
        text = path.read_text()
        assert 'pytestmark = pytest.mark.requires("can")' in text or "def test_" not in text, path
        names += re.findall(r"^def (test_\w+)\(", text, re.M)
    assert len(names) >= 20, names


def test_bench_bitrate_goes_to_the_board_side_open(tmp_path):
    from harness.config.labs import lab_boards

    lab = tmp_path / "lab-bench.toml"
    lab.write_text(
        '[lab]\nname = "bench"\n[[device]]\nname = "pico-can"\nport = "/dev/ttyHILNONE"\n'
        'can = { interface = "virtual", channel = "hil-can-test", bitrate = 250000 }\n'
    )
    sys.path.insert(0, str(SUITE))
    try:
        sys.modules.pop("hilcan_host", None)
        import hilcan_host
    finally:
        sys.path.remove(str(SUITE))

    class BenchBoard:
        spec = lab_boards([lab])["pico-can"]

    assert hilcan_host.board_open_args(BenchBoard()) == "bitrate=250000"


# --- the host side of the mixed-frame cases (suites/can/hilcan_host.py) -----------------------------
@pytest.fixture
def host(monkeypatch):
    monkeypatch.syspath_prepend(str(SUITE))
    sys.modules.pop("hilcan_host", None)
    import hilcan_host

    return hilcan_host


def test_mixed_frames_are_seeded_and_cover_every_kind(host):
    import random

    a = host.mixed_frames(random.Random(7), 2000, fd=True)
    assert a == host.mixed_frames(random.Random(7), 2000, fd=True)  # the seed replays the run
    assert a != host.mixed_frames(random.Random(8), 2000, fd=True)
    kinds = {(ext, rtr, fd) for _, ext, rtr, _, _, fd, _ in a}
    assert kinds == {(e, r, f) for e in (False, True) for r in (False, True) for f in (False, True) if not (r and f)}
    assert {dlc for _, _, rtr, dlc, _, fd, _ in a if not fd} == set(range(9))
    assert all(i <= (0x1FFFFFFF if ext else 0x7FF) for i, ext, *_ in a)
    assert any(i > 0x7FF for i, ext, *_ in a if ext)  # extended ids that do not fit 11 bits
    assert not any(f[5] for f in host.mixed_frames(random.Random(7), 2000))  # no FD unless the link has it
    assert all(host.to_full(host.full_message(f)) == f for f in a)  # python-can keeps every field


def test_first_difference_names_lost_duplicated_reordered_altered(host):
    f = [(n, False, False, 1, bytes([n]), False, False) for n in range(10)]
    assert host.first_difference(f, list(f)) is None
    lost = host.first_difference(f, f[:4] + f[5:])
    assert "frame #4: expected <std 0x4 dlc=1 04> but got <std 0x5 dlc=1 05>, which is #5: frame #4 lost" in lost
    assert "reordered" in host.first_difference(f, [*f[:4], f[5], f[4], *f[6:]])
    assert "duplicated" in host.first_difference(f, [*f[:5], f[4], *f[5:9]])
    altered = host.first_difference(f, [*f[:3], (3, False, True, 1, b"", False, False), *f[4:]])
    assert altered.endswith("altered (remote False -> True, data b'\\x03' -> b'')")
    assert "never came: lost" in host.first_difference(f, f[:8])
    assert "extra" in host.first_difference(f, [*f, f[0]])


def test_lost_counters_name_the_counter(host):
    assert host.lost_counters({"lost": {}, "counters": {"overflow": 0}}) is None
    said = host.lost_counters({"lost": {"sock_rxq_drops": 184, "can0.rx_dropped": 2}})
    assert said.startswith("the board counted lost frames: sock_rxq_drops = 184 (the SocketCAN socket's receive queue")
    assert "can0.rx_dropped = 2 (/sys/class/net/can0/statistics/rx_dropped since the bus was opened)" in said
    assert "no loss counters" in host.lost_counters({"rx": 1})  # an app that cannot count is not a pass


def test_packed_frames_round_trip_to_the_board_format(host):
    import random

    frames = host.mixed_frames(random.Random(3), 200, fd=True)
    assert host.unpack_full(host.pack_full(frames)) == frames
