"""The qemu_x86 image: builds, caches, and boots under QEMU (TCG) to a working MicroPython REPL.

Boot tests need qemu-system-x86_64 and apt access for the kernel package on first build; they
are skipped without QEMU. Every QEMU is started in its own process group and killed with it."""

from __future__ import annotations

import lzma
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.errors import BuildError
from harness.images import BuildContext, Image
from harness.images import linux_x86

BOOT_TIMEOUT = 90.0  # TCG boots take 4-60 s on a loaded 2-core machine
TIMEOUT = 15.0
BANNER = b"MicroPython "
PROMPT = b">>> "
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """One QEMU running the image, its ttyS0 on a pty opened with pyserial."""

    def __init__(self, image: Image, extra: list[str], cmdline: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*linux_x86.qemu_args(image, cmdline), "-serial", "pty", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() can take QEMU's whole process group
        )
        self.port = serial.Serial(self._pty_path(), timeout=0.1)
        self.buf = b""

    def _pty_path(self) -> str:
        out = b""
        deadline = time.monotonic() + TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                if m := re.search(rb"char device redirected to (/dev/pts/\d+)", out):
                    return m.group(1).decode()
        raise AssertionError(f"QEMU printed no pty path: {out.decode(errors='replace')}")

    def read_until(self, marker: bytes, timeout: float = TIMEOUT) -> bytes:
        """Everything up to and including marker; the rest stays buffered."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {marker!r} within {timeout} s; console tail: {self.buf[-500:]!r}")
            self.buf += self.port.read(4096)
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def raw_exec(self, code: str, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
        """Run code in the raw REPL (already entered); (stdout, stderr) as the protocol frames them."""
        self.write(code.encode() + b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04>", timeout)[:-2]
        return out, err

    def kill(self) -> None:
        try:
            self.port.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=TIMEOUT)
            if self.proc.stdout:
                self.proc.stdout.close()


def boot(image: Image, extra: list[str], cmdline: str) -> Guest:
    """A guest at its first >>> prompt; one retry, since a loaded host sometimes stalls a boot."""
    for attempt in (1, 2):
        guest = Guest(image, extra, cmdline)
        try:
            guest.read_until(b"hil: ready", BOOT_TIMEOUT)
            guest.read_until(BANNER, TIMEOUT)
            guest.read_until(PROMPT, TIMEOUT)
            print(f"boot to prompt: {time.monotonic() - guest.started:.1f} s (attempt {attempt})")
            return guest
        except AssertionError:
            guest.kill()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fw = tmp_path_factory.mktemp("firmware_py")
    (fw / "hil_probe.py").write_text('def hello():\n    return "hil-probe-ok"\n')
    return fw


@pytest.fixture(scope="module")
def image(firmware: Path) -> Image:
    return linux_x86.build(BuildContext(firmware_py=firmware), {})


@pytest.fixture
def guest(image: Image) -> Iterator[Guest]:
    g = boot(image, ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"], linux_x86.kernel_cmdline())
    try:
        yield g
    finally:
        g.kill()


# --- no QEMU needed ---------------------------------------------------------------------------


def test_kernel_cmdline() -> None:
    assert linux_x86.kernel_cmdline() == "console=ttyS0 quiet loglevel=0 panic=-1"
    line = linux_x86.kernel_cmdline("192.168.7.2/24", "192.168.7.1", can=True)
    assert line.split()[-3:] == ["hil.ip=192.168.7.2/24", "hil.gw=192.168.7.1", "hil.can=1"]


def test_extract_vmlinux_skips_false_magic() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 64
    blob = b"junk" + linux_x86.XZ_MAGIC + b"not a stream" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"tail"
    assert linux_x86.extract_vmlinux(blob) == elf
    with pytest.raises(BuildError):
        linux_x86.extract_vmlinux(b"no kernel here")


def test_cpio_layout(tmp_path: Path) -> None:
    tree = linux_x86.Tree()
    tree.file("lib/hil/a.py", b"x = 1\n")
    tree.symlink("bin/sh", "/bin/busybox")
    tree.write_cpio(tmp_path / "t.cpio")
    listing = subprocess.run(
        ["cpio", "-t", "-F", str(tmp_path / "t.cpio")], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert listing == ["bin", "bin/sh", "lib", "lib/hil", "lib/hil/a.py"]


# --- build ------------------------------------------------------------------------------------


def test_build_is_cached_and_complete(image: Image, firmware: Path) -> None:
    again = linux_x86.build(BuildContext(firmware_py=firmware), {})
    assert again.cached and again.digest == image.digest
    assert again.files == image.files
    assert image.files["kernel"].read_bytes()[:4] == b"\x7fELF"
    assert image.info["kernel"].startswith("linux-image-6.1.0-")
    assert image.info["micropython"].startswith("1.")
    listing = subprocess.run(
        ["cpio", "-t", "-F", str(image.files["initrd"])], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    for path in ("init", "lib/hil/hil_probe.py", "usr/bin/python3.11", "usr/bin/micropython", "bin/busybox"):
        assert path in listing
    modules = {Path(p).name for p in listing if p.endswith(".ko")}
    assert {"virtio_net.ko", "slcan.ko", "can-raw.ko", "vcan.ko"} <= modules
    assert "e1000.ko" not in modules


def test_firmware_change_changes_digest(image: Image, tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text("y = 2\n")
    assert linux_x86.build(BuildContext(firmware_py=tmp_path), {}).digest != image.digest


# --- boot -------------------------------------------------------------------------------------


@needs_qemu
def test_repl_modules_and_soft_reset(guest: Guest) -> None:
    guest.write(b"import socket, tls, os, hil_probe\r")
    assert b"Error" not in guest.read_until(PROMPT)
    guest.write(b"print(os.listdir('/lib/hil'), hil_probe.hello(), os.getcwd())\r")
    out = guest.read_until(PROMPT)
    assert b"['hil_probe.py'] hil-probe-ok /root" in out

    guest.write(b"\x01")  # raw REPL
    guest.read_until(RAW_PROMPT)
    out, err = guest.raw_exec("marker = 42\nprint(marker * 2)")
    assert (out, err) == (b"84\n", b"")  # stty -onlcr: print emits a bare \n
    out, err = guest.raw_exec("open('note.txt', 'w').write('kept')\nprint(open('/root/note.txt').read())")
    assert out == b"kept\n"

    guest.write(b"\x04")  # Ctrl-D at the raw prompt: the process exits, init starts a new one
    guest.read_until(BANNER)
    guest.read_until(PROMPT)
    guest.write(b"marker\r")
    assert b"NameError" in guest.read_until(PROMPT)  # fresh interpreter
    guest.write(b"open('note.txt').read()\r")
    assert b"'kept'" in guest.read_until(PROMPT)  # files survive a soft reset


@needs_qemu
def test_ctrl_c_and_raw_paste(guest: Guest) -> None:
    guest.write(b"\x01")
    guest.read_until(RAW_PROMPT)
    guest.write(b"import time\nwhile True: time.sleep_ms(10)\x04")
    guest.read_until(b"OK")
    time.sleep(0.5)
    guest.write(b"\x03")  # SIGINT via the controlling tty
    assert b"KeyboardInterrupt" in guest.read_until(b"\x04>")

    guest.write(b"\x05A\x01")  # raw-paste request
    reply = guest.read_until(b"\x01")
    assert reply.endswith(b"R\x01")
    window = guest.port.read(2)
    while len(window) < 2:
        window += guest.port.read(2 - len(window))
    assert int.from_bytes(window, "little") > 0
    guest.write(b"print('pasted')\x04")
    assert b"pasted" in guest.read_until(b"\x04>")


@needs_qemu
def test_network_tcp_via_hostfwd(image: Image) -> None:
    port = _free_port()
    net = ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:7000", "-device", "virtio-net-pci,netdev=n0"]
    g = boot(image, net, linux_x86.kernel_cmdline())
    try:
        g.write(b"\x01")
        g.read_until(RAW_PROMPT)
        code = (
            "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(socket.getaddrinfo('0.0.0.0', 7000)[0][-1])\ns.listen(1)\nprint('listening')\n"
            "c, _ = s.accept()\nc.send(c.recv(64).upper())\nc.close()\ns.close()\n"
        )
        g.write(code.encode() + b"\x04")
        g.read_until(b"listening")
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
            conn.sendall(b"ping")
            assert conn.recv(64) == b"PING"
        g.read_until(b"\x04>")
    finally:
        g.kill()


@needs_qemu
def test_can_over_slcan(image: Image) -> None:
    can = pytest.importorskip("can")
    port = _free_port()
    extra = [
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on",
    ]  # fmt: skip
    g = boot(image, extra, linux_x86.kernel_cmdline(can=True))
    bus = None
    try:
        bus = can.Bus(interface="slcan", channel=f"socket://127.0.0.1:{port}", bitrate=500000)
        g.write(b"\x01")
        g.read_until(RAW_PROMPT)
        code = (
            "import socket, struct\nidx = int(open('/sys/class/net/can0/ifindex').read())\n"
            "s = socket.socket(29, 3, 1)\ns.bind(struct.pack('<HhiII', 29, 0, idx, 0, 0) + bytes(8))\n"
            "print('bound')\nf = s.recv(16)\ncid, dlc = struct.unpack('<IB', f[:5])\n"
            "print('got', hex(cid), f[8:8 + dlc].hex())\n"
            "s.send(struct.pack('<IB3x8s', 0x321, 2, b'\\xbe\\xef'))\n"
        )
        g.write(code.encode() + b"\x04")
        g.read_until(b"bound")
        bus.send(can.Message(arbitration_id=0x123, data=b"\xaa\xbb", is_extended_id=False))
        assert b"got 0x123 aabb" in g.read_until(b"\x04>")
        msg = bus.recv(timeout=TIMEOUT)
        assert msg is not None and msg.arbitration_id == 0x321 and bytes(msg.data) == b"\xbe\xef"
    finally:
        if bus is not None:
            bus.shutdown()
        g.kill()
