"""Long code sent compressed to mps2_an385 (console.compress_min; harness/io/codepack.py, the board's
half firmware_py/hil_paste.py unz), on the real firmware: the code arrives exactly, whatever bytes
it holds, runs as plain code would (same output, same traceback), and can still be interrupted."""

from __future__ import annotations

import random
import zlib

import pytest

from harness.board import Board
from harness.config.boards import find_board
from harness.io.repl import ExecTimeout
from tests.conftest import REPO

# every control character a str literal may hold raw (Ctrl-C, the escape byte \x10, ...), but
# not the line ends, quotes or backslash; and some beyond ASCII
ALPHABET = [chr(c) for c in range(1, 32) if chr(c) not in "\r\n"] + list("abcdefgh é€") * 3


@pytest.fixture(scope="module")
def mps2(tmp_path_factory):
    with Board(find_board("mps2_an385", REPO / "targets"), log_dir=tmp_path_factory.mktemp("mps2")) as board:
        assert board.repl.compress_min > 0, "targets/mps2_an385.toml sets console.compress_min"
        yield board


def test_a_20_kb_program_with_every_awkward_byte_arrives_exactly(mps2):
    rng = random.Random(15)
    text = "".join(rng.choice(ALPHABET) for _ in range(18000))
    assert "\x03" in text and "\x10" in text
    code = f"import binascii\ns = '''{text}'''\nprint(len(s), binascii.crc32(s.encode()))\n"
    assert len(code.encode()) > 20000
    assert mps2.exec(code) == f"{len(text)} {zlib.crc32(text.encode())}\n"
    assert mps2.repl.packed  # it went compressed


def test_compressed_code_runs_as_plain_code_does(mps2):
    body = "".join(f"v{i} = {i}\n" for i in range(40)) + "print(__name__, v39)\n"
    tracebacks = []
    for compress_min in (0, 200):
        mps2.repl.compress_min = compress_min
        with pytest.raises(ValueError) as info:
            mps2.exec(body + "def f():\n    raise ValueError('line 43')\nf()\n")
        assert mps2.repl.packed == bool(compress_min)
        assert info.value.output == "__main__ 39\n"
        with pytest.raises(SyntaxError) as bad:
            mps2.exec(body + "def f(:\n")
        tracebacks.append((info.value.board_traceback, bad.value.board_traceback))
    assert tracebacks[0] == tracebacks[1]
    assert 'File "<stdin>", line 43, in f' in tracebacks[1][0]


def test_compressed_code_can_be_interrupted(mps2):
    code = "".join(f"v{i} = {i}\n" for i in range(40)) + "while True:\n    pass\n"
    with pytest.raises(ExecTimeout):
        mps2.exec(code, timeout=1)
    assert mps2.repl.packed
    assert mps2.exec(code.replace("while True", "while False")) == ""
