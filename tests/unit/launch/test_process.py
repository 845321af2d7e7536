"""ProcessLauncher with stand-in programs (a tiny Python script, sh, sleep) instead of MicroPython:
the console is a pty the launcher owns, a clean exit is a soft reset (the next process takes the
same console, from a warm spare when the target asks for one), a crash loop leaves the board dead
and says so, stop() leaves nothing running."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from harness.config.boards import load_board
from harness.errors import BoardDied, InfrastructureError
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
        assert wait_for(lambda: launcher.exit_status == 0) and launcher.alive()  # reaped after the takeover
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


# Says its pid and a marker the previous process may have left in the environment (none can: each
# process is fresh), then keeps a variable it is told and exits 0 on "q".
SPARE_SCRIPT = """
import os, sys
print('pid', os.getpid(), 'state', globals().get('kept', 'fresh'), flush=True)
data = os.read(0, 100)
kept = data.decode()
sys.exit(0 if b'q' in data else 3)
"""


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.spawns
def test_a_warm_spare_takes_the_console_at_once_and_each_process_is_fresh(tmp_path, no_leftovers):
    script = tmp_path / "board.py"
    script.write_text(SPARE_SCRIPT)
    fds_before = open_fds()
    launcher = launcher_for(tmp_path, [sys.executable, str(script)], "spare = true\n")
    console = Console(launcher.start(), timeout=5)
    try:
        first = console.expect_bytes(b"\n", 5, "first line").split()
        assert wait_for(lambda: launcher.spare is not None and launcher.spare.proc.poll() is None)
        spare_pid = launcher.spare.proc.pid
        console.send(b"q")  # exits 0: the soft reset
        second = console.expect_bytes(b"\n", 5, "second line").split()
        assert second[1] == str(spare_pid).encode() and second[1] != first[1]  # the spare took over
        assert second[3] == b"fresh"  # a new process: nothing of the last one's state
        # the console may take over at the old pty's close, before the watcher has reaped its status
        assert wait_for(lambda: launcher.exit_status == 0) and launcher.alive()
        assert wait_for(lambda: launcher.spare is not None)  # and the next spare is on its way
    finally:
        launcher.stop()
        console.close()
    assert not launcher.alive() and launcher.spare is None
    assert open_fds() == fds_before  # every pty master closed: the console's and the spare's


@pytest.mark.spawns
def test_a_crash_loop_with_a_spare_still_ends_dead_and_leaves_nothing(tmp_path, no_leftovers):
    launcher = launcher_for(tmp_path, ["sh", "-c", "exit 3"], "spare = true\n")
    transport = launcher.start()
    try:
        assert wait_for(lambda: not launcher.alive())
        assert launcher.quick_exits == ProcessLauncher.CRASH_LOOP
        assert launcher.death() == "process sh kept exiting (last status 3)"
        with pytest.raises(BoardDied):  # the console says so instead of waiting for a successor
            transport.read(100, 2.0)
    finally:
        launcher.stop()
        transport.close()
    assert launcher.spare is None


@pytest.mark.spawns
def test_an_entry_point_is_forked_fresh_on_its_own_terminal(tmp_path, no_leftovers):
    """[launch] entry: each process is forked from a server that imported the entry point once.
    It gets the pty as its controlling terminal in a session of its own, the target's env and
    argv, and none of the last process's state; stop() leaves no server and no child."""
    env = 'env = { HIL_FORK_TEST = "{workdir}" }\nentry = "tests.unit.launch.fork_entry:main"\n'
    launcher = launcher_for(tmp_path, [sys.executable, "--flag"], env)
    console = Console(launcher.start(), timeout=10)
    try:
        first = console.expect_bytes(b"\n", 10, "first line").decode().split()
        assert first[first.index("argv") + 1 :][:2] == [sys.executable, "--flag"]
        assert first[first.index("tty") + 1].startswith("/dev/pts/") and first[first.index("sid") + 1] == "True"
        assert first[first.index("env") + 1] == str(tmp_path / "work")
        console.send(b"q")
        second = console.expect_bytes(b"\n", 10, "second line").decode().split()
        assert second[1] != first[1] and second[second.index("state") + 1] == "0"
        assert wait_for(lambda: launcher.exit_status == 0) and launcher.alive()  # reaped after the takeover
        server = launcher.forker.server
    finally:
        launcher.stop()
        console.close()
    assert server.poll() is not None and not launcher.alive()


@pytest.mark.spawns
def test_an_entry_point_that_does_not_import_is_one_line(tmp_path, no_leftovers):
    launcher = launcher_for(tmp_path, [sys.executable], 'entry = "hil_no_such_module:main"\n')
    with pytest.raises(InfrastructureError) as info:
        launcher.start()
    launcher.stop()
    message = str(info.value)
    assert message.startswith("the fork server for hil_no_such_module:main did not start: ")
    assert "No module named 'hil_no_such_module'" in message and "\n" not in message
