"""Recording a console session and playing it back as a board (harness/io/recording.py).

The REPL client's exec path runs here against recordings of the real boards (recordings/, made
with `make recordings`): the same steps through today's client must write what the recorded one
wrote, byte for byte, and get what the board answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.ports import parse_port
from harness.errors import BoardDied, ConfigError
from harness.io import open_port
from harness.io.console import Console
from harness.io.recording import (
    SOFT_RESET,
    RecordingTransport,
    ReplayMismatch,
    ReplayTransport,
    Step,
    load_recording,
    record_session,
    run_step,
)
from harness.io.repl import RawRepl
from tests.fakeboard import FakeRawBoard

RECORDINGS = sorted((Path(__file__).parent / "recordings").glob("*.hilrec"))


def recorded_fake(tmp_path: Path, codes: list[str], **fake) -> tuple[Path, list[Step]]:
    path = tmp_path / "fake.hilrec"
    recorder = RecordingTransport(FakeRawBoard(**fake), path, board="fake", header={"raw_paste": True})
    steps = record_session(RawRepl(Console(recorder, timeout=2), raw_paste=True), recorder, codes)
    recorder.close()
    return path, steps


def replayed(path: Path) -> tuple[ReplayTransport, RawRepl]:
    header = ReplayTransport(path).recording.header
    replay = ReplayTransport(path, write_chunk=header.get("write_chunk", 0))  # paced as recorded, no gap
    console = Console(replay, timeout=2)
    # how the client sends code, as the recorded board's target file said (RawRepl's keyword arguments)
    sending = {k: header[k] for k in ("rx_buffer", "ack_module", "ack_every", "compress_min") if k in header}
    repl = RawRepl(console, raw_paste=header["raw_paste"], exec_timeout=header.get("exec_timeout", 2), **sending)
    return replay, repl


def test_a_session_is_recorded_both_ways_with_its_steps(tmp_path):
    path, steps = recorded_fake(tmp_path, ["print(6 * 7)", "raise ValueError('nope')", SOFT_RESET, "print(1)"])
    recording = load_recording(path)
    assert recording.header["board"] == "fake" and recording.header["raw_paste"] is True
    assert [s.op for s in recording.steps] == ["enter_raw", "exec", "exec", "soft_reset", "exec", "exit_raw"]
    assert recording.steps == steps
    assert steps[1] == Step("exec", "print(6 * 7)", "42\n")
    assert steps[2].error == "ValueError: nope" and steps[2].out == ""
    directions = {c.dir for c in recording.chunks}
    assert directions == {"in", "out"}
    assert b"print(6 * 7)" in b"".join(c.data for c in recording.chunks if c.dir == "out")
    assert all(a.t <= b.t for a, b in zip(recording.chunks, recording.chunks[1:], strict=False))


def test_a_replay_answers_the_same_session_and_ends(tmp_path):
    path, steps = recorded_fake(tmp_path, ["print('a' * 40)", "x = 1\ny = 2\nprint(x + y)"])
    replay, repl = replayed(path)
    assert [run_step(repl, s.op, s.code) for s in steps] == steps
    assert replay.finished


def test_a_host_that_says_something_else_is_told_where(tmp_path):
    path, _ = recorded_fake(tmp_path, ["print(6 * 7)"])
    _, repl = replayed(path)
    repl.enter_raw()
    with pytest.raises(ReplayMismatch) as info:
        repl.exec("print(6 * 8)")
    message = str(info.value)
    assert message.startswith(f"{path}: at byte ") and "b'8)" in message and "b'7)" in message
    assert "record the session again" in message and "\n" not in message


def test_writing_past_the_end_of_the_session_is_a_mismatch(tmp_path):
    path, _ = recorded_fake(tmp_path, [])
    replay, repl = replayed(path)
    repl.enter_raw()
    repl.exit_raw()
    assert replay.finished
    with pytest.raises(ReplayMismatch, match="after the recorded session ended"):
        replay.write(b"\x01")
    replay.close()
    with pytest.raises(BoardDied):
        replay.read(1, 0)


def test_replay_is_a_port_scheme(tmp_path):
    path, _ = recorded_fake(tmp_path, [])
    transport = open_port(parse_port(f"replay:{path}"))
    assert isinstance(transport, ReplayTransport) and transport.name == f"replay:{path}"
    with pytest.raises(ConfigError, match="names no recording"):
        parse_port("replay:")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such recording; make one with `hil record BOARD"),
        ("", "empty recording"),
        ('{"not": "a header"}\n', "line 1: not a hil recording of format 1"),
        ('{"hil-recording": 1}\n{"t": 0, "dir": "sideways", "data": ""}\n', "line 2: dir is 'sideways'"),
        ('{"hil-recording": 1}\n{"t": 0, "dir": "in"}\n', "line 2: 'data'"),
        ('{"hil-recording": 1}\nnot json\n', "line 2: Expecting value"),
    ],
)
def test_a_bad_recording_is_one_line_naming_file_and_line(tmp_path, content, fragment):
    path = tmp_path / "bad.hilrec"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        ReplayTransport(path)
    assert str(info.value).startswith(str(path)) and fragment in str(info.value) and "\n" not in str(info.value)


def test_any_byte_survives_a_recording(tmp_path):
    path = tmp_path / "bytes.hilrec"
    every = bytes(range(256))
    recorder = RecordingTransport(FakeRawBoard(), path)
    recorder.write(every)
    recorder.close()
    assert load_recording(path).chunks[0].data == every
    assert json.loads(path.read_text().splitlines()[1])["dir"] == "out"


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_the_repl_client_replays_a_real_boards_session(path):
    """Made by `hil record BOARD FILE` on the real board (`make recordings`). A failure here after a
    deliberate change of what the client writes means: record again, and review the diff."""
    replay, repl = replayed(path)
    steps = replay.recording.steps
    assert steps and steps[0].op == "enter_raw"
    for step in steps:
        assert run_step(repl, step.op, step.code) == step
    assert replay.finished


def test_every_default_board_has_a_recording():
    assert {p.stem for p in RECORDINGS} >= {"native", "mps2_an385", "microbit", "qemu_x86"}


def test_a_journal_gets_the_same_chunks_both_ways_with_wall_times(tmp_path):
    """The in-memory sink every board's console has (the evidence timeline's console lines): the
    same chunks the file gets, at wall-clock times, and link events; no file needed."""
    import time

    from harness.report.journal import BOARD_TO_HOST, HARNESS, HOST_TO_BOARD, Journal

    journal = Journal(cap=1 << 20)
    fake = FakeRawBoard()
    before = time.time()
    both = RecordingTransport(fake, tmp_path / "both.hilrec", journal=journal)
    RawRepl(Console(both, timeout=2), raw_paste=True).enter_raw()
    fake.event("reconnected after 0.2 s")
    entries = journal.since(before).entries
    console = [e for e in entries if e.source != HARNESS]
    recorded = load_recording(tmp_path / "both.hilrec").chunks
    assert [(e.source, e.payload) for e in console] == [
        (HOST_TO_BOARD if c.dir == "out" else BOARD_TO_HOST, c.data) for c in recorded
    ]
    assert before <= entries[0].t <= entries[-1].t <= time.time()
    assert entries[-1].source == HARNESS and entries[-1].payload == "link: reconnected after 0.2 s"
    only_journal = RecordingTransport(FakeRawBoard(), journal=Journal(cap=1 << 20))
    only_journal.write(b"\r\x03")
    assert only_journal.path is None and [e.payload for e in only_journal.journal.since(0).entries] == [b"\r\x03"]
    assert only_journal.write_chunk == 0 and only_journal.inner.name == only_journal.name
