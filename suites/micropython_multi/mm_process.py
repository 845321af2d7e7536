"""A host process as an mm_protocol instance (run-multitests.py's PyInstanceSubProcess): CPython
for the expected output of tests without a .exp file. No harness imports: mm_truth.py runs it in a
network namespace of its own."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

REMOVE_CWD = b"import sys\nsys.path.remove('')\n\n"  # L150-154: an isolated sys.path


class ProcessInstance:
    """A host process running the script with ``-c`` in the test file's directory (L145-231)."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv, self.cwd = argv, cwd
        self.popen: subprocess.Popen | None = None
        self.finished = True

    def __str__(self) -> str:
        return Path(self.argv[0]).name

    def start(self, script: bytes) -> None:
        self.stop()
        self.popen = subprocess.Popen(
            [*self.argv, "-c", REMOVE_CWD + script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True,
        )  # fmt: skip
        self.finished = False

    def readline(self, timeout: float) -> tuple[str | None, str | None]:
        assert self.popen is not None and self.popen.stdout is not None
        raw = self.popen.stdout.raw  # type: ignore[attr-defined]
        if not select.select([raw], [], [], timeout)[0]:
            self.finished = self.popen.poll() is not None
            return None, None
        out = raw.readline()
        if out == b"":
            self.finished = self.popen.wait() is not None
            return None, None
        return out.rstrip().decode("utf-8", "replace"), None

    def write(self, data: bytes) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        try:
            self.popen.stdin.write(data)
            self.popen.stdin.flush()
        except BrokenPipeError:
            pass  # it ended meanwhile: its output says so

    def is_finished(self) -> bool:
        return self.finished

    def stop(self) -> None:
        """End the process and its group (upstream terminates the process)."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass

    def wait_reboot(self, delay_ms: float) -> bool:
        return False
