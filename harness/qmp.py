"""A QEMU Machine Protocol connection (qemu.qmp, QEMU's own client library) with timeouts."""

from __future__ import annotations

import time
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from harness.errors import InfrastructureError


class Qmp:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        deadline = time.monotonic() + timeout
        while True:
            self.conn = QEMUMonitorProtocol(str(path))
            try:
                self.conn.connect()
                break
            except Exception as exc:  # noqa: BLE001 - ConnectError wraps ENOENT/ECONNREFUSED while QEMU starts
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"QMP socket {path} did not answer within {timeout:g} s: {exc}") from None
                time.sleep(0.005)
        self.conn.settimeout(timeout)

    def cmd(self, name: str, **args) -> dict:
        reply = self.conn.cmd_raw(name, args or None)
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
        except Exception:  # noqa: BLE001 - QEMU may already be gone
            pass
