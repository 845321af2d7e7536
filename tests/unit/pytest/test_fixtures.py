"""The board fixtures' helpers: console text fit for XML, board facts as JUnit properties, and the
per-test packet capture around a launcher (fakes only; the fixtures themselves run in
test_retry.py's pytester sessions on a fake board pool)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.board import BoardFacts
from harness.pytest.fixtures import _start_capture, _stop_capture, board_properties, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text\n\twith tabs\n", "plain text\n\twith tabs\n"),
        ("raw REPL; CTRL-B to exit\r\n>OK\x04\x04>", "raw REPL; CTRL-B to exit^M\n>OK^D^D>"),
        ("\x00\x01\x1b[0m\x1f", "^@^A^[[0m^_"),
        ("del\x7f", "del?"),
        ("ünïcode → ok", "ünïcode → ok"),
        ("", ""),
    ],
)
def test_printable_shows_control_characters_as_carets(raw, shown):
    assert printable(raw) == shown


def test_printable_output_is_valid_xml_text():
    import xml.etree.ElementTree as ET

    text = printable("".join(chr(c) for c in range(0, 128)))
    assert ET.fromstring(f"<a>{text.replace('&', '&amp;').replace('<', '&lt;')}</a>").text == text


def test_board_properties_come_from_the_boards_facts(tmp_path):
    facts = BoardFacts(banner="MicroPython v1.25.0 on 2025-01-01; fake", version="1.25.0", boot_seconds=1.23456,
                       image_digest="sha256:abc")  # fmt: skip
    board = SimpleNamespace(name="fake", facts=facts, console_log=tmp_path / "fake.console.log")
    assert board_properties(board) == {
        "board": "fake",
        "micropython_version": "1.25.0",
        "banner": "MicroPython v1.25.0 on 2025-01-01; fake",
        "image_digest": "sha256:abc",
        "boot_seconds": "1.235",
        "console_log": str(tmp_path / "fake.console.log"),
    }


def test_board_properties_before_facts_are_known(tmp_path):
    board = SimpleNamespace(name="fake", facts=BoardFacts(), console_log=tmp_path / "x.log")
    props = board_properties(board)
    assert props["boot_seconds"] == "0.000" and props["micropython_version"] == "" and props["board"] == "fake"


class FakeLauncher:
    """Records capture calls; ``ident`` is what start_capture answers (None: no network to capture)."""

    def __init__(self, ident: str | None, writes: bool = True) -> None:
        self.ident, self.writes = ident, writes
        self.started: list[Path] = []
        self.stopped: list[str] = []

    def start_capture(self, path: Path) -> str | None:
        assert not path.exists(), "a previous run's pcap must be removed before capturing again"
        self.started.append(path)
        if self.ident and self.writes:
            path.write_bytes(b"\xd4\xc3\xb2\xa1")
        return self.ident

    def stop_capture(self, ident: str) -> None:
        self.stopped.append(ident)


def fake(tmp_path: Path, launcher) -> tuple[SimpleNamespace, SimpleNamespace]:
    board = SimpleNamespace(launcher=launcher, log_dir=tmp_path / "logs")
    item = SimpleNamespace(nodeid="suites/net/test_tcp.py::test_echo[mps2 an385/tap]", user_properties=[])
    return board, item


def test_no_launcher_no_capture(tmp_path):
    board, item = fake(tmp_path, None)
    assert _start_capture(board, item) is None
    assert not (tmp_path / "logs").exists()


def test_a_launcher_without_a_network_captures_nothing(tmp_path):
    launcher = FakeLauncher(None)
    board, item = fake(tmp_path, launcher)
    assert _start_capture(board, item) is None
    assert len(launcher.started) == 1 and launcher.stopped == []
    assert item.user_properties == []


def test_capture_file_is_named_after_the_test_and_becomes_a_property(tmp_path):
    launcher = FakeLauncher("dump0")
    board, item = fake(tmp_path, launcher)
    stale = tmp_path / "logs" / "pcaps" / "suites_net_test_tcp.py_test_echo_mps2_an385_tap_.pcap"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old run")  # removed before the new capture starts (FakeLauncher checks)
    capture = _start_capture(board, item)
    assert capture == ("dump0", stale)
    _stop_capture(board, item, *capture)
    assert launcher.stopped == ["dump0"]
    assert item.user_properties == [("pcap", str(stale))]


def test_no_pcap_property_when_the_capture_wrote_no_file(tmp_path):
    launcher = FakeLauncher("dump0", writes=False)
    board, item = fake(tmp_path, launcher)
    capture = _start_capture(board, item)
    assert capture is not None
    _stop_capture(board, item, *capture)
    assert launcher.stopped == ["dump0"] and item.user_properties == []


def test_stop_capture_after_the_launcher_went_away_keeps_the_file(tmp_path):
    launcher = FakeLauncher("dump0")
    board, item = fake(tmp_path, launcher)
    capture = _start_capture(board, item)
    board.launcher = None  # the board was stopped during the test
    _stop_capture(board, item, *capture)
    assert launcher.stopped == [] and item.user_properties == [("pcap", str(capture[1]))]


def test_capture_names_stay_short_for_long_test_ids(tmp_path):
    launcher = FakeLauncher("d")
    board, item = fake(tmp_path, launcher)
    item.nodeid = "suites/x/test_y.py::test_" + "z" * 400 + "[board]"
    _, path = _start_capture(board, item)
    assert len(path.name) <= 150 + len(".pcap") and path.name.endswith("_board_.pcap")
