"""A real PostgreSQL server for the history tests (Debian package ``postgresql``, installed by
``make setup``): a fresh cluster in a temporary folder, listening only on a unix socket there,
started with initdb/pg_ctl (as ``nobody`` when we are root: postgres refuses to run as root) and
removed afterwards."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    assert path, f"PostgreSQL's {name} is not installed: run `make setup` (Debian package postgresql)"
    return path


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the server's URL (``postgresql://hil@/postgres?host=SOCKETDIR``)."""
    # in /tmp: nobody must reach it (a $TMPDIR may be root's own), and a socket path is short
    base = Path(tempfile.mkdtemp(prefix="hil-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data = base / "data"
    if os.geteuid() == 0:
        os.chown(base, 65534, 65534)  # nobody
    started = False
    try:
        run = dict(cwd=base, capture_output=True, text=True, timeout=120)
        done = subprocess.run(_as_owner([pg_bin("initdb"), "-D", str(data), "-U", "hil", "--auth=trust", "-E",
                                         "UTF8", "--no-sync"]), **run)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        opts = f"-k {base} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        done = subprocess.run(_as_owner([pg_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t",
                                         "60", "-o", opts, "start"]), **run)  # fmt: skip
        started = True
        assert done.returncode == 0, done.stderr[-2000:] + (base / "log").read_text()[-2000:]
        yield f"postgresql://hil@/postgres?host={base}"
    finally:
        if started:
            subprocess.run(_as_owner([pg_bin("pg_ctl"), "-D", str(data), "-w", "-t", "30", "-m", "immediate",
                                      "stop"]), cwd=base, capture_output=True, timeout=60)  # fmt: skip
            pidfile = data / "postmaster.pid"
            if pidfile.exists():  # pg_ctl could not stop it: the postmaster's process group goes
                with contextlib.suppress(ValueError, OSError):
                    os.killpg(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
