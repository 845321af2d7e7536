"""A QEMU Machine Protocol connection (qemu.qmp, QEMU's own client library) with timeouts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from harness.errors import InfrastructureError

# qemu.qmp logs every failed connect at ERROR; a QEMU still starting up is expected here.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class Qmp:
    def __init__(self, path: Path, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True) -> None:
        """Connect to QEMU's QMP socket at ``path``; ``alive`` says whether that QEMU still runs, so
        one that exited at start (bad arguments, a port in use) is not waited for until ``timeout``."""
        self.path = path
        deadline = time.monotonic() + timeout
        while not path.exists() and time.monotonic() < deadline and alive():  # QEMU creates it once initialised
            time.sleep(0.005)
        while True:
            self.conn = QEMUMonitorProtocol(str(path))
            try:
                self._connect(max(deadline - time.monotonic(), 0.05))
                break
            except Exception as exc:
                self.conn.close()
                if time.monotonic() > deadline or not alive():
                    raise InfrastructureError(f"QMP socket {path} did not answer within {timeout:g} s: {exc}") from None
                time.sleep(0.005)
        self.conn.settimeout(timeout)

    def _connect(self, timeout: float) -> None:
        """The legacy shim's connect() waits for the greeting with no timeout (a monitor that
        accepts but never greets would hang us): run its coroutine under asyncio's wait_for."""
        sync, client = getattr(self.conn, "_sync", None), getattr(self.conn, "_qmp", None)
        if sync is None or client is None:  # a qemu.qmp without these internals: unbounded, as before
            self.conn.connect()
            return
        client.await_greeting = client.negotiate = True
        sync(client.connect(str(self.path)), timeout)

    def cmd(self, name: str, /, **args) -> dict:
        try:
            reply = self.conn.cmd_raw(name, args or None)
        except TimeoutError:
            raise InfrastructureError(f"QMP {name} failed: QEMU did not answer within its timeout") from None
        except (QMPError, OSError) as exc:  # QEMU went away mid-command (e.g. a bad migration stream)
            raise InfrastructureError(f"QMP {name} failed: QEMU disconnected ({type(exc).__name__}: {exc})") from None
        if "error" in reply:
            raise InfrastructureError(f"QMP {name} failed: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return", {})

    def wait_migration(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.cmd("query-migrate").get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                raise InfrastructureError(f"QEMU migration {status}")
            if time.monotonic() > deadline:
                raise InfrastructureError(f"QEMU migration still '{status}' after {timeout:g} s")
            time.sleep(0.005)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
