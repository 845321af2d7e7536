"""Serial ports across machines: RFC 2217 (ser2net) and labgrid places.

- ``Rfc2217Transport``: pyserial's ``rfc2217://`` client that survives a dropped TCP connection:
  bytes already received are kept, the link is re-opened (for up to ``reconnect_timeout``
  seconds) and a marker goes into the console log;
- ``Ser2net``: ser2net exporting local serial ports on loopback, run as a child process with its
  own config file (not the system service);
- ``LabgridPlace``: acquire a labgrid place, hand back its NetworkSerialPort as an
  ``rfc2217://`` URL, release it on exit (context manager, atexit, and on errors);
- ``LabgridCoordinator`` / ``LabgridExporter``: a labgrid coordinator and exporter run locally
  (how the tests build a real lab on loopback; also a quick way to try labgrid).

Every process goes through harness.procs, so none outlives the harness."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import serial

from harness import procs
from harness.errors import BoardDied, ConfigError, InfrastructureError
from harness.transport import SerialTransport, Transport

LOOPBACK = "127.0.0.1"
LABGRID_DEFAULT_PORT = 20408
_LABGRID_URL = re.compile(r"^labgrid://(?:(?P<host>[^/:]+)(?::(?P<port>\d+))?)?/(?P<place>[\w.-]+)$")
_LABGRID_SHORT = re.compile(r"^labgrid:(?P<place>[\w.-]+)$")


# --- RFC 2217 ------------------------------------------------------------------------------------
def rfc2217_url(url: str) -> str:
    """``rfc2217://host:port`` with the options the harness needs: ``ign_set_control`` (ser2net
    on a pty, or a USB bridge without modem lines, does not acknowledge SET_CONTROL)."""
    parts = urlsplit(url)
    if parts.scheme != "rfc2217" or not parts.hostname or not parts.port:
        raise ConfigError(f"{url!r} is not an RFC 2217 URL; write it as rfc2217://HOST:PORT")
    options = parse_qs(parts.query, keep_blank_values=True)
    if "ign_set_control" in options:
        return url
    return url + ("&" if parts.query else "?") + "ign_set_control"


class Rfc2217Transport(SerialTransport):
    """pyserial's RFC 2217 client, reconnecting when the TCP connection drops.

    pyserial raises as soon as its reader thread has died, even with received bytes still
    queued; those bytes are salvaged first, so nothing the board said is lost on our side."""

    def __init__(self, url: str, baudrate: int = 115200, reconnect_timeout: float = 15.0,
                 open_timeout: float = 5.0, **pacing) -> None:  # fmt: skip
        Transport.__init__(self, **pacing)
        self.name = rfc2217_url(url)
        self.baudrate = baudrate
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._salvaged = b""
        self._pending: list[str] = []  # reconnect notes: logged after the bytes from before
        self._lock = threading.Lock()
        # A server still closing the previous connection may refuse or drop a new one for a moment.
        port, last = self._open(open_timeout)
        if port is None:
            raise InfrastructureError(
                f"cannot open serial port {self.name}: {_short(last)}; is ser2net / the lab host running?"
            )
        self.port = port

    def _open(self, timeout: float):
        """(port, None) or (None, last error) after trying for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return serial.serial_for_url(self.name, baudrate=self.baudrate, timeout=0), None
            except (serial.SerialException, OSError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                return None, last
            time.sleep(0.2)

    @property
    def connected(self) -> bool:
        """False once the server closed the connection (pyserial's reader thread has ended)."""
        thread = getattr(self.port, "_thread", None)
        return bool(self.port.is_open and thread is not None and thread.is_alive())

    def read(self, size: int, timeout: float | None) -> bytes:
        if self._salvaged:
            data, self._salvaged = self._salvaged[:size], self._salvaged[size:]
            return data
        self._flush_events()  # after the salvaged bytes went to the log: the log keeps the true order
        try:
            return self._read(size, timeout)
        except BoardDied as exc:
            self._reconnect(str(exc))
            if self._salvaged:
                return self.read(size, 0)
            return self._read(size, timeout)

    def _set_timeout(self, timeout: float | None) -> None:
        # Not the ``timeout`` property: upstream pyserial renegotiates every port setting with the
        # server on each assignment (labgrid's pyserial fork does not); the reader only needs this.
        self.port._timeout = timeout

    def _read(self, size: int, timeout: float | None) -> bytes:
        return SerialTransport.read(self, size, timeout)

    def _flush_events(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            self.event(text)

    def close(self) -> None:
        self._flush_events()
        super().close()

    def _write(self, data: bytes) -> None:
        self._flush_events()
        # A write into a connection the server already closed may "succeed" and be lost: reconnect first.
        if not self.connected:
            self._reconnect("connection closed by the server")
        try:
            super()._write(data)
        except BoardDied as exc:
            self._reconnect(str(exc))
            super()._write(data)

    def _salvage(self) -> bytes:
        """Bytes pyserial's reader thread had queued before the link died."""
        queue = getattr(self.port, "_read_buffer", None)
        out = bytearray()
        while queue is not None:
            try:
                out += queue.get_nowait()
            except Exception:  # queue.Empty
                break
        return bytes(out)

    def _reconnect(self, reason: str) -> None:
        with self._lock:
            self._salvaged += self._salvage()
            with contextlib.suppress(Exception):
                self.port.close()
            started = time.monotonic()
            port, last = self._open(self.reconnect_timeout)
            if port is None:
                self._flush_events()
                self.event(f"{self.name}: connection lost ({_short(reason)}); no reconnect within "
                           f"{self.reconnect_timeout:g} s")  # fmt: skip
                raise BoardDied(
                    f"{self.name}: connection lost ({_short(reason)}) and not back within "
                    f"{self.reconnect_timeout:g} s ({_short(last)}): is ser2net / the lab host running?"
                )
            self.port = port
            self.reconnects += 1
            self._pending.append(
                f"{self.name}: connection lost ({_short(reason)}); reconnected after "
                f"{time.monotonic() - started:.1f} s (reconnect {self.reconnects})"
            )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- process helpers -----------------------------------------------------------------------------
def free_tcp_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(port: int, host: str = LOOPBACK) -> bool:
    """Is something listening on host:port? Read from /proc/net/tcp: no connection is made."""
    v4 = socket.inet_aton(host)[::-1].hex().upper()
    want_hosts = {v4, "00000000", "0000000000000000FFFF0000" + v4, "0" * 32}  # IPv4, any, v4-mapped IPv6
    suffix = f":{port:04X}"
    lines = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines += Path(table).read_text().splitlines()[1:]
        except OSError:
            pass
    for line in lines:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == "0A" and local.endswith(suffix) and local.split(":")[0] in want_hosts:
            return True
    return False


def _wait(condition, timeout: float, proc: subprocess.Popen | None, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise InfrastructureError(f"{what} exited with status {proc.returncode} at start: {_tail(log)}")
        if time.monotonic() >= deadline:
            raise InfrastructureError(f"{what} not ready within {timeout:g} s: {_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path | None, limit: int = 300) -> str:
    if log is None or not log.exists():
        return "(no output)"
    text = " | ".join(ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip())
    return text[-limit:] or "(no output)"


def _tool(name: str, package: str) -> str:
    """A console script from this venv (next to sys.executable), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise InfrastructureError(f"{name} not found: install {package} (make setup does)")
    return found


# --- ser2net ------------------------------------------------------------------------------------
class Ser2net:
    """ser2net exporting local serial ports over RFC 2217 on loopback: one TCP port per device.

        with Ser2net({"pico": "/dev/ttyACM0"}) as s2n:
            url = s2n.url("pico")        # rfc2217://127.0.0.1:PORT?ign_set_control
    """

    def __init__(self, ports: dict[str, str], *, host: str = LOOPBACK, baudrate: int = 115200,
                 tcp_ports: dict[str, int] | None = None, workdir: Path | None = None) -> None:
        for name, path in ports.items():
            if not re.fullmatch(r"[\w.-]+", name):
                raise ConfigError(f"ser2net: connection name {name!r} must be letters, digits, '_', '.', '-'")
            if not Path(path).exists():
                raise InfrastructureError(f"ser2net: serial port {path} ({name}) does not exist: plug it in")
        self.ports, self.host, self.baudrate = dict(ports), host, baudrate
        self.tcp_ports = dict(tcp_ports or {}) or {name: free_tcp_port(host) for name in ports}
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hil-ser2net-"))
        self.config = self.workdir / "ser2net.yaml"
        self.log = self.workdir / "ser2net.log"
        self.proc: subprocess.Popen | None = None

    def config_text(self) -> str:
        lines = ["%YAML 1.1", "---", "# written by hil: RFC 2217 on loopback, one connection per serial port"]
        for name, path in self.ports.items():
            lines += [
                f"connection: &{name}",
                f"  accepter: telnet(rfc2217,mode=server),tcp,{self.host},{self.tcp_ports[name]}",
                f"  connector: serialdev(nouucplock=true),{path},{self.baudrate}n81,local",
                "  options:",
                "    max-connections: 1",
                "    kickolduser: true",  # a reconnecting client replaces its own stale connection
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> Ser2net:
        binary = _tool("ser2net", "Debian package ser2net")
        self.config.write_text(self.config_text())
        with open(self.log, "ab") as log:
            self.proc = procs.spawn(
                [binary, "-d", "-c", str(self.config), "-P", str(self.workdir / "ser2net.pid")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait(lambda: all(listening(p, self.host) for p in self.tcp_ports.values()), 10.0, self.proc,
                  f"ser2net ({self.config})", self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, name: str) -> str:
        return rfc2217_url(f"rfc2217://{self.host}:{self.tcp_ports[name]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc:
            procs.kill(self.proc, grace=2.0)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same TCP ports (a lab host coming back)."""
        self.stop()
        deadline = time.monotonic() + 10
        while any(listening(p, self.host) for p in self.tcp_ports.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.start()

    def __enter__(self) -> Ser2net:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- labgrid --------------------------------------------------------------------------------------
def is_labgrid(port: str) -> bool:
    return port.startswith("labgrid:")


def parse_labgrid(port: str, default_coordinator: str | None = None) -> tuple[str, str]:
    """``labgrid://HOST:PORT/PLACE`` or ``labgrid:PLACE`` -> (coordinator, place). The short form
    takes the coordinator from ``default_coordinator``, $LG_COORDINATOR, or labgrid's default."""
    if m := _LABGRID_URL.match(port):
        host = m.group("host") or LOOPBACK
        return f"{host}:{m.group('port') or LABGRID_DEFAULT_PORT}", m.group("place")
    if m := _LABGRID_SHORT.match(port):
        coordinator = default_coordinator or os.environ.get("LG_COORDINATOR") or f"{LOOPBACK}:{LABGRID_DEFAULT_PORT}"
        return coordinator, m.group("place")
    raise ConfigError(f"{port!r} is not a labgrid place; write labgrid://HOST:PORT/PLACE or labgrid:PLACE")


def labgrid_client(coordinator: str, *args: str, timeout: float = 30.0) -> str:
    """Run ``labgrid-client -x COORDINATOR ARGS``; return stdout, or raise with labgrid's own error line."""
    argv = [_tool("labgrid-client", "PyPI package labgrid"), "-x", coordinator, *args]
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
_chained: dict[int, object] = {}


def _release_on_signal(signum: int, frame) -> None:
    """SIGTERM/SIGHUP (a CI job cancelled): give the places back, then do what was done before
    (harness.procs kills the children and dies of the signal)."""
    for place in list(_held):
        place._release_quietly()
    previous = _chained.get(signum)
    if callable(previous):
        previous(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_signal_release() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(signum)
        if current is not _release_on_signal and signum not in _chained:
            _chained[signum] = current
            signal.signal(signum, _release_on_signal)


class LabgridPlace:
    """A labgrid place held for the duration of a ``with`` block; its NetworkSerialPort as a URL.

    Released on exit, on exceptions, at interpreter exit (atexit) if the holder forgot, and on
    SIGTERM/SIGHUP. Only a SIGKILL leaves it acquired (then: labgrid-client -p PLACE release)."""

    def __init__(self, place: str, coordinator: str | None = None, timeout: float = 30.0) -> None:
        self.place = place
        self.coordinator = coordinator or os.environ.get("LG_COORDINATOR") or f"{LOOPBACK}:{LABGRID_DEFAULT_PORT}"
        self.timeout = timeout
        self.acquired = False  # by us (a place we already held is used but not released)
        self.url = ""

    @classmethod
    def from_port(cls, port: str, default_coordinator: str | None = None) -> LabgridPlace:
        coordinator, place = parse_labgrid(port, default_coordinator)
        return cls(place, coordinator)

    def _client(self, *args: str) -> str:
        return labgrid_client(self.coordinator, "-p", self.place, *args, timeout=self.timeout)

    def acquire(self) -> str:
        _install_signal_release()
        try:
            self._client("acquire")
            self.acquired = True
            _held.add(self)
            atexit.register(self._release_quietly)
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
                return rfc2217_url(f"rfc2217://{params['host']}:{params['port']}")
        raise InfrastructureError(
            f"labgrid place {self.place!r} has no NetworkSerialPort: add one with "
            f"'labgrid-client -p {self.place} add-match EXPORTER/GROUP/NetworkSerialPort/NAME'"
        )

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        _held.discard(self)
        atexit.unregister(self._release_quietly)
        self._client("release")

    def _release_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.release()

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _after_colon(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("labgrid coordinator ") and ": " in text else text


_install_signal_release()  # at import (the main thread) too: places may be acquired in worker threads


class LabgridCoordinator:
    """labgrid-coordinator (gRPC) listening on loopback, its state files in a private directory."""

    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host, self.port = host, port or free_tcp_port(host)
        self.workdir = Path(tempfile.mkdtemp(prefix="hil-labgrid-"))
        self.log = self.workdir / "coordinator.log"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LabgridCoordinator:
        with open(self.log, "ab") as log:
            self.proc = procs.spawn(
                [_tool("labgrid-coordinator", "PyPI package labgrid"), "-l", self.address],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait(lambda: listening(self.port, self.host), 20.0, self.proc, "labgrid-coordinator", self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def create_place(self, place: str, *matches: str) -> None:
        """A place matching exported resources (EXPORTER/GROUP/CLASS/NAME patterns)."""
        labgrid_client(self.address, "-p", place, "create")
        if matches:
            labgrid_client(self.address, "-p", place, "add-match", *matches)

    def acquired_by(self, place: str) -> str | None:
        """Who holds the place (host/user), or None."""
        out = labgrid_client(self.address, "-p", place, "show")
        m = re.search(r"^\s*acquired: (\S+)", out, re.M)
        return None if not m or m.group(1) == "None" else m.group(1)

    def stop(self) -> None:
        if self.proc:
            procs.kill(self.proc, grace=3.0)
            self.proc = None

    def __enter__(self) -> LabgridCoordinator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class LabgridExporter:
    """labgrid-exporter publishing local serial ports (RawSerialPort) to a coordinator. labgrid runs
    ser2net (RFC 2217) for each port while a place holding it is acquired."""

    def __init__(self, coordinator: str, ports: dict[str, str], *, name: str = "hil", group: str = "hil",
                 hostname: str = LOOPBACK, baudrate: int = 115200) -> None:
        for path in ports.values():
            if not Path(path).exists():
                raise InfrastructureError(f"labgrid exporter: serial port {path} does not exist: plug it in")
        self.coordinator, self.ports, self.name, self.group = coordinator, dict(ports), name, group
        self.hostname, self.baudrate = hostname, baudrate
        self.workdir = Path(tempfile.mkdtemp(prefix="hil-exporter-"))
        self.config = self.workdir / "exporter.yaml"
        self.log = self.workdir / "exporter.log"
        self.proc: subprocess.Popen | None = None

    def match(self, resource: str) -> str:
        """The place match pattern for one exported port."""
        return f"{self.name}/{self.group}/NetworkSerialPort/{resource}"

    def config_text(self) -> str:
        lines = [f"{self.group}:"]
        for resource, path in self.ports.items():
            lines += [f"  {resource}:", "    cls: RawSerialPort", f"    port: {path}", f"    speed: {self.baudrate}"]
        return "\n".join(lines) + "\n"

    def start(self) -> LabgridExporter:
        self.config.write_text(self.config_text())
        argv = [_tool("labgrid-exporter", "PyPI package labgrid"), "-c", self.coordinator, "-n", self.name,
                "--hostname", self.hostname, str(self.config)]
        with open(self.log, "ab") as log:
            self.proc = procs.spawn(argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        try:
            _wait(self._published, 30.0, self.proc, f"labgrid-exporter {self.name}", self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def _published(self) -> bool:
        out = labgrid_client(self.coordinator, "-v", "resources", timeout=15)
        return all(f"({self.match(r)})" in out.replace("[/", "/").replace("])", ")") for r in self.ports)

    def stop(self) -> None:
        if self.proc:
            procs.kill(self.proc, grace=3.0)  # its ser2net children share its process group
            self.proc = None

    def __enter__(self) -> LabgridExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
