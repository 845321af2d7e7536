"""ProcessLauncher with stand-in programs (a tiny Python script, sh, sleep) instead of MicroPython:
the console is a pty the launcher owns, a clean exit is a soft reset (respawned on the same
console), a crash loop leaves the board dead and says so, stop() leaves nothing running."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from harness.config.boards import load_board
from harness.errors import InfrastructureError
from harness.images import Image
from harness.io.console import Console
from harness.launch.base import LaunchContext
from harness.launch.process import ProcessLauncher
from tests.conftest import write_target

# Counts its starts in the working directory, says where it runs, exits 0 on "q" and 3 on "x".
SCRIPT = """
import json, os, pathlib, sys
count = pathlib.Path('starts'); n = int(count.read_text() or 0) + 1 if count.exists() else 1
count.write_text(str(n))
print(json.dumps({'start': n, 'cwd': os.getcwd(), 'path': os.environ.get('MICROPYPATH')}), flush=True)
data = os.read(0, 100)
sys.exit(0 if b'q' in data else 3)
"""


def launcher_for(tmp_path: Path, command: list[str], env: str = "") -> ProcessLauncher:
    body = f"[launch]\nkind = \"process\"\ncommand = {json.dumps(command)}\n{env}"
    spec = load_board(write_target(tmp_path, "proc", body))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return ProcessLauncher(spec, LaunchContext(Image(digest="none"), work, tmp_path / "fw"))


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def started(console: Console) -> dict:
    return json.loads(console.expect_bytes(b"\n", 5, "start line").strip())


@pytest.mark.spawns
def test_start_gives_console_and_clean_exit_is_respawned(tmp_path, no_leftovers):
    script = tmp_path / "board.py"  # a file: braces in -c code would read as placeholders
    script.write_text(SCRIPT)
    env = 'env = { MICROPYPATH = "{firmware_py}:.frozen" }\n'
    launcher = launcher_for(tmp_path, [sys.executable, str(script)], env)
    console = Console(launcher.start(), timeout=5)
    try:
        first = started(console)
        assert first == {"start": 1, "cwd": str(tmp_path / "work"), "path": f"{tmp_path / 'fw'}:.frozen"}
        assert launcher.alive()
        console.send(b"q")  # exits 0: the unix port's Ctrl-D; the launcher starts it again
        assert started(console)["start"] == 2  # same console, new process
        assert launcher.exit_status == 0 and launcher.alive()
    finally:
        launcher.stop()
        console.close()
    assert not launcher.alive()


@pytest.mark.spawns
def test_crash_loop_leaves_it_dead_and_death_names_the_status(tmp_path, no_leftovers):
    launcher = launcher_for(tmp_path, ["sh", "-c", "exit 3"])
    transport = launcher.start()
    try:
        assert wait_for(lambda: not launcher.alive())
        assert launcher.quick_exits == ProcessLauncher.CRASH_LOOP
        assert launcher.exit_status == 3
        assert launcher.death() == "process sh kept exiting (last status 3)"
    finally:
        launcher.stop()
        transport.close()


@pytest.mark.spawns
def test_stop_kills_a_running_process(tmp_path, no_leftovers):
    launcher = launcher_for(tmp_path, ["sleep", "30"])
    transport = launcher.start()
    proc = launcher.proc
    assert proc is not None and launcher.alive()
    started_at = time.monotonic()
    launcher.stop()
    transport.close()
    assert time.monotonic() - started_at < 3  # SIGTERM, not the grace period or a 30 s sleep
    assert proc.poll() is not None and not launcher.alive()
    assert launcher.proc is proc  # not respawned after the kill
    assert launcher.slave == -1


@pytest.mark.spawns
def test_missing_program_is_one_line_naming_the_key(tmp_path, no_leftovers):
    launcher = launcher_for(tmp_path, ["hil-no-such-program", "--flag"])
    with pytest.raises(InfrastructureError) as info:
        launcher.start()
    launcher.stop()
    assert str(info.value) == (f"{tmp_path / 'proc.toml'}: launch.command program 'hil-no-such-program' not found; "
                               "install it (make setup does)")  # fmt: skip
    assert not launcher.alive()


def test_unknown_placeholder_names_the_known_ones(tmp_path):
    launcher = launcher_for(tmp_path, ["micropython", "{nosuch}"])
    with pytest.raises(InfrastructureError, match=r"placeholder \{nosuch\} in launch arguments is unknown "
                                                  r"\(known: \{firmware_py\}, \{venv_bin\}, \{workdir\}\)"):
        launcher._argv()
