"""The expected output of a multi-instance test: its .exp file, else what the protocol gives with
CPython instances (run-multitests.py L523-536 "truth"). The CPython run binds the test's fixed
ports (8000, ...): it runs in a network namespace of its own (``unshare -n``, loopback only), so
runs in parallel and other programs on the host cannot collide with it; where unshare is refused
(not root) it runs in the host's namespace. Kept in the harness's cache by CPython version and the
file's bytes.

Run as a script (inside the namespace): ``python mm_truth.py TEST_FILE`` prints the outcome as JSON."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRUTH_TIMEOUT = 120.0  # a whole CPython run; upstream has none
LOOPBACK = "127.0.0.1"  # run-multitests.py's get_host_ip() where there is no route out (L115-127)


def cpython() -> list[str]:
    """run-multitests.py's PYTHON_TRUTH: $MICROPY_CPYTHON3, default this CPython."""
    return [os.environ.get("MICROPY_CPYTHON3") or sys.executable]


@functools.cache
def expected_output(test_file: Path) -> str:
    exp = test_file.with_name(test_file.name + ".exp")
    if exp.is_file():
        return exp.read_text(encoding="utf-8", errors="replace")
    return cpython_truth(test_file)


def cpython_truth(test_file: Path) -> str:
    source = test_file.read_bytes()
    key = hashlib.sha256("\0".join([*cpython(), sys.version]).encode() + b"\0" + source).hexdigest()
    cached = _cache_dir() / key[:32]
    with contextlib.suppress(OSError):
        return cached.read_text(encoding="utf-8")
    outcome = _run_isolated(test_file)
    text = outcome["output"]
    if not outcome["error"] and not outcome["skip"]:  # a failed truth run is said again next time
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}")
            partial.write_text(text, encoding="utf-8")
            partial.replace(cached)
    return text


def _run_isolated(test_file: Path) -> dict:
    command = [*cpython(), str(HERE / "mm_truth.py"), str(test_file)]
    try:
        done = subprocess.run(["unshare", "-n", *command], capture_output=True, timeout=TRUTH_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"output": f"CPYTHON3 TRUTH RUN FAILED: {exc}\n", "error": True, "skip": False}
    if done.returncode != 0 and b"unshare" in done.stderr[:200]:  # namespaces refused: the host's own
        return run_here(test_file)
    try:
        return json.loads(done.stdout)
    except ValueError:
        tail = (done.stdout + done.stderr)[-400:].decode("utf-8", "replace")
        return {"output": f"CPYTHON3 TRUTH RUN FAILED: {tail}\n", "error": True, "skip": False}


def run_here(test_file: Path) -> dict:
    from mm_process import ProcessInstance
    from mm_protocol import instance_count, run_test

    source = test_file.read_bytes()
    n = instance_count(source.decode("utf-8", "replace"))
    instances = [ProcessInstance(cpython(), test_file.parent) for _ in range(n)]
    outcome = run_test(source, instances, [LOOPBACK] * n)
    return {"output": outcome.output, "error": outcome.error, "skip": outcome.skip}


def _cache_dir() -> Path:
    return Path(os.environ.get("HIL_CACHE") or Path.home() / ".cache" / "hil") / "mp-multi-expected"


if __name__ == "__main__":
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    print(json.dumps(run_here(Path(sys.argv[1]))))
