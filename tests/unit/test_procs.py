from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from harness import procs


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(")")[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.spawns
def test_kill_takes_the_whole_process_group():
    proc = procs.spawn(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    procs.kill(proc)
    assert proc.poll() is not None
    assert _gone(grandchild)
    assert proc.pid not in procs.live_pids()


@pytest.mark.spawns
def test_children_die_when_the_harness_is_killed_9():
    script = (
        "import subprocess, sys, time\n"
        "from harness import procs\n"
        "p = procs.spawn(['sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(harness.stdout.readline())
    harness.send_signal(signal.SIGKILL)
    harness.wait(5)
    assert _gone(child), "PR_SET_PDEATHSIG did not take the child down"


@pytest.mark.spawns
def test_sigterm_to_the_harness_kills_children():
    script = (
        "import time\n"
        "from harness import procs\n"
        "p = procs.spawn(['sh', '-c', 'sleep 60 & echo $!; wait'], stdout=__import__('subprocess').PIPE)\n"
        "print(p.stdout.readline().decode().strip(), flush=True)\n"
        "time.sleep(60)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    grandchild = int(harness.stdout.readline())
    harness.send_signal(signal.SIGTERM)
    assert harness.wait(5) == -signal.SIGTERM
    assert _gone(grandchild)
