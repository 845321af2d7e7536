"""labgrid places as serial ports: acquire a place, hand back its NetworkSerialPort as an
``rfc2217://`` URL, release it on exit (context manager, atexit, SIGTERM/SIGHUP, and on errors)."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess

from harness import procs
from harness.config.ports import PortRef, labgrid_coordinator, parse_port
from harness.errors import InfrastructureError


def labgrid_client(coordinator: str, *args: str, timeout: float = 30.0) -> str:
    """Run ``labgrid-client -x COORDINATOR ARGS``; return stdout, or raise with labgrid's own error line."""
    argv = [procs.tool("labgrid-client", "PyPI package labgrid"), "-x", coordinator, *args]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = procs.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.kill(proc)
        raise InfrastructureError(
            f"labgrid coordinator {coordinator}: 'labgrid-client {' '.join(args)}' did not finish within "
            f"{timeout:g} s: is labgrid-coordinator running there?"
        ) from None
    procs.forget(proc)
    if proc.returncode != 0:
        text = (err or out).decode(errors="replace")
        raise InfrastructureError(f"labgrid coordinator {coordinator}: {_labgrid_error(text)}")
    return out.decode(errors="replace")


def _labgrid_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error:" in line or "error:" in line:
            msg = line.split("Error:", 1)[-1].strip() if "Error:" in line else line
            if "Could not connect to coordinator" in line:
                msg += ": is labgrid-coordinator running there?"
            return msg
    return lines[-1] if lines else "labgrid-client failed without a message"


_held: set[LabgridPlace] = set()  # places acquired by this process and not yet released


def _release_held() -> None:
    """At interpreter exit (a holder that forgot, an uncaught exception) and on SIGTERM/SIGHUP (a
    CI job cancelled, see procs.at_signal): give the places back."""
    for place in list(_held):
        with contextlib.suppress(Exception):
            place.release()


atexit.register(_release_held)
procs.at_signal(_release_held)


class LabgridPlace:
    """A labgrid place held for the duration of a ``with`` block; its NetworkSerialPort as a URL.

    Released on exit, on exceptions, at interpreter exit (atexit) if the holder forgot, and on
    SIGTERM/SIGHUP. Only a SIGKILL leaves it acquired (then: labgrid-client -p PLACE release)."""

    def __init__(self, place: str, coordinator: str | None = None, timeout: float = 30.0) -> None:
        self.place = place
        self.coordinator = labgrid_coordinator(coordinator)
        self.timeout = timeout
        self.acquired = False  # by us (a place we already held is used but not released)
        self.url = ""

    @classmethod
    def from_port(cls, port: PortRef, default_coordinator: str | None = None) -> LabgridPlace:
        port = port.with_coordinator(default_coordinator)
        return cls(port.name, port.coordinator)

    def _client(self, *args: str) -> str:
        return labgrid_client(self.coordinator, "-p", self.place, *args, timeout=self.timeout)

    def acquire(self) -> str:
        try:
            self._client("acquire")
            self.acquired = True
            _held.add(self)
        except InfrastructureError as exc:
            if "already acquired place" not in str(exc) or "on " in str(exc).split("already acquired place", 1)[1]:
                raise InfrastructureError(f"labgrid place {self.place!r}: {_after_colon(exc)}") from None
            # held by this user on this host already (e.g. by the `hil smoke` that started us): use it
        try:
            self.url = self._serial_url()
        except BaseException:
            self.release()
            raise
        return self.url

    def _serial_url(self) -> str:
        import yaml  # a labgrid dependency

        env = yaml.safe_load(self._client("env")) or {}
        resources = (env.get("targets", {}).get(self.place) or {}).get("resources") or []
        for entry in resources:
            params = entry.get("NetworkSerialPort") if isinstance(entry, dict) else None
            if params and params.get("port"):
                return parse_port(f"rfc2217://{params['host']}:{params['port']}").rfc2217_url()
        raise InfrastructureError(
            f"labgrid place {self.place!r} has no NetworkSerialPort: add one with "
            f"'labgrid-client -p {self.place} add-match EXPORTER/GROUP/NetworkSerialPort/NAME'"
        )

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        _held.discard(self)
        self._client("release")

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _after_colon(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("labgrid coordinator ") and ": " in text else text


