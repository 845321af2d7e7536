"""ser2net, a labgrid coordinator and a labgrid exporter run locally on loopback: how the harness's
tests build a real remote lab without hardware (also a quick way to try labgrid).
Every process goes through harness.procs, so none outlives the harness."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import procs
from harness.config.ports import LOOPBACK
from harness.errors import ConfigError, InfrastructureError
from harness.io.labgrid import labgrid_client
from harness.io.rfc2217 import rfc2217_url
from harness.net.boardnet import free_port


# --- process helpers -----------------------------------------------------------------------------
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
        self.tcp_ports = dict(tcp_ports or {}) or {name: free_port(host=host) for name in ports}
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
        binary = procs.tool("ser2net", "Debian package ser2net")
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




class LabgridCoordinator:
    """labgrid-coordinator (gRPC) listening on loopback, its state files in a private directory."""

    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host=host)
        self.workdir = Path(tempfile.mkdtemp(prefix="hil-labgrid-"))
        self.log = self.workdir / "coordinator.log"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LabgridCoordinator:
        with open(self.log, "ab") as log:
            self.proc = procs.spawn(
                [procs.tool("labgrid-coordinator", "PyPI package labgrid"), "-l", self.address],
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
        argv = [procs.tool("labgrid-exporter", "PyPI package labgrid"), "-c", self.coordinator, "-n", self.name,
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
