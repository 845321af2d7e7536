"""microbit_uflash: a board that is one target file. Its image is a ready-made MicroPython HEX taken
from a registry package by the generic 'prebuilt' builder (real download, real cache), booted in
QEMU's micro:bit."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.board import Board
from harness.config.boards import find_board
from harness.images import BuildContext, build_image
from tests.conftest import REPO

BOARD = "microbit_uflash"


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_image_comes_from_the_registry_once(private_cache: Path) -> None:
    spec = find_board(BOARD)
    ctx = BuildContext(firmware_py=REPO / "firmware_py", log=lambda _m: None, target=spec.path)
    first = build_image(spec.image.builder, ctx, spec.image.options)
    second = build_image(spec.image.builder, ctx, spec.image.options)
    assert (first.cached, second.cached) == (False, True)
    hex_file = first.files["hex"]
    assert hex_file.is_relative_to(private_cache) and hex_file.name == "micropython-microbit-v1.1.1.hex"
    assert first.info["sha256"] == spec.image.options["sha256"]
    assert hex_file.read_text().startswith(":")


def test_boots_with_its_own_micropython(tmp_path: Path) -> None:
    with Board(find_board(BOARD), log_dir=tmp_path) as board:
        assert board.eval("1+1") == 2
        assert board.facts.version == "1.9.2"
        assert "micro:bit v1.1.1" in board.facts.banner
        assert board.eval("__import__('os').listdir()") == []  # stock firmware: nothing of the project's
