"""The 'mps2_micropython' builder: MicroPython's ports/qemu for BOARD=MPS2_AN385 (QEMU -M mps2-an385).

The source is Debian's ``micropython`` source package (pinned version, fetched from trixie with an
isolated apt configuration whose signed index verifies it), built with Debian's gcc-arm-none-eabi and
picolibc. The on-board modules in firmware_py are frozen into the ELF.

With ``lwip_version`` and ``mbedtls_version`` set, the firmware is a network board: Debian's
``lwip`` and ``mbedtls`` source packages fill the tarball's empty lib/lwip and lib/mbedtls, Debian's
patch that links the system mbedTLS is reversed (a firmware has no system library), and the C in
firmware_c/mps2 (LAN9118 driver, network.LAN, SysTick, WFI idle, host clock and entropy) is
applied as the board MPS2_AN385_HIL. See firmware_c/mps2/README.md.

Cache layers keep rebuilds cheap: each extracted source (per package and version), the assembled
network tree (per versions + firmware_c), mpy-cross (per version) and the firmware ELF. Cached
trees are never written to: every build puts its output in its own BUILD directory."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_root, cached_build
from harness.errors import BuildError, ConfigError, HarnessError
from harness.images import BuildContext, Image
from harness.paths import resource

BUILDER_VERSION = "mps2-2"
DEFAULT_SOURCE_VERSION = "1.25.0+ds-1"
SOURCE_PACKAGE = "micropython"
SOURCE_SUITE = "trixie"
BOARD = "MPS2_AN385"
NET_BOARD = "MPS2_AN385_HIL"  # firmware_c/mps2, copied into ports/qemu/boards
# Debian's patch that makes extmod link the system's libmbedtls; reversed for a firmware build
DEBIAN_SYSTEM_MBEDTLS_PATCH = "debian/patches/0006-extmod-Use-system-mbedtls.patch"
DEFAULT_HEAP_KB = 140
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# tool -> Debian package that provides it
FETCH_TOOLS = {"apt-get": "apt", "dpkg-source": "dpkg-dev", "xz": "xz-utils"}
BUILD_TOOLS = {
    "make": "make",
    "gcc": "gcc",  # host compiler for mpy-cross
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "dpkg-parsechangelog": "dpkg-dev",  # Debian's patched py.mk makes the version header with it
}
NET_TOOLS = {"patch": "patch"}

APT_TIMEOUT = 300
EXTRACT_TIMEOUT = 120
MAKE_TIMEOUT = 900


# ---------------------------------------------------------------------------------------------
# subprocesses


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    timeout: float,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run cmd, appending its output to log_file; BuildError (one line) on failure or timeout.

    Runs in its own session so a timeout kills make's whole process tree, not just make."""
    with log_file.open("a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise BuildError(f"{what} timed out after {timeout:.0f} s (log: {log_file})") from None
        log.write(out)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}): {_last_error_line(out)} (log: {log_file})")
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _last_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    # make's own "*** [...] Error N" lines say nothing about the cause; prefer the line before them
    useful = [ln for ln in lines if not re.match(r"make(\[\d+\])?: ", ln)]
    for ln in reversed(useful):
        if re.search(r"^E: |\b(error|cannot|unable|failed)\b", ln, re.IGNORECASE):
            return ln
    return (useful or lines or ["no output"])[-1]


def _require_tools(tools: Mapping[str, str]) -> None:
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise BuildError(f"'{tool}' not found: install the Debian package {package}")


def _require_picolibc() -> None:
    # ports/qemu selects picolibc when the compiler finds its specs file; without it the link fails
    try:
        out = subprocess.run(
            ["arm-none-eabi-gcc", "--print-file-name=picolibc.specs"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"arm-none-eabi-gcc does not run: {e}") from None
    if not out or out == "picolibc.specs" or not Path(out).exists():
        raise BuildError("picolibc.specs not found: install the Debian package picolibc-arm-none-eabi")


def _elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"


# ---------------------------------------------------------------------------------------------
# fetching the Debian source package with an isolated apt configuration


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _is_main_archive(suites: list[str], components: list[str]) -> bool:
    # the main archive carries plain codename suites ("bookworm"); security and updates are separate
    return "main" in components and any(s and "-" not in s and "/" not in s for s in suites)


def _system_mirrors() -> list[str]:
    """Debian archive URIs from the machine's apt sources (deb822 files and one-line lists)."""
    uris: list[str] = []
    for path in sorted(APT_SOURCES_DIR.glob("*.sources")):
        for st in _deb822_stanzas(path.read_text(errors="replace")):
            if st.get("enabled", "yes").lower() == "no" or "deb" not in st.get("types", "").split():
                continue
            if _is_main_archive(st.get("suites", "").split(), st.get("components", "").split()):
                uris += st.get("uris", "").split()
    lists = [APT_SOURCES_LIST, *sorted(APT_SOURCES_DIR.glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])  # drop options like [arch=amd64]
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "deb" and _is_main_archive([parts[2]], parts[3:]):
                uris.append(parts[1])
    # prefer an archive whose path is the usual /debian; drop anything that is a security archive
    uris = [u for u in dict.fromkeys(uris) if "security" not in u]
    return sorted(uris, key=lambda u: not u.rstrip("/").endswith("/debian"))


def _mirror(options: dict) -> str:
    if options.get("mirror"):
        return str(options["mirror"])
    mirrors = _system_mirrors()
    if not mirrors:
        raise BuildError(
            f"no Debian archive found in {APT_SOURCES_DIR} or {APT_SOURCES_LIST} to fetch the "
            f"{SOURCE_PACKAGE} source from; set image option 'mirror'"
        )
    return mirrors[0]


@dataclass
class IsolatedApt:
    """An apt configuration living entirely under ``root``: own sources, lists, cache and state.

    The system's apt.conf.d is still read, since it says how this machine reaches the network."""

    root: Path
    mirror: str

    def setup(self) -> None:
        for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d", "download"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "status").write_text("")
        (self.root / "sources.list").write_text(
            f"deb-src [signed-by={KEYRING}] {self.mirror.rstrip('/')} {SOURCE_SUITE} main\n"
        )

    def command(self, *args: str) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::SourceList": r / "sources.list",
            "Dir::Etc::SourceParts": r / "sources.list.d",
            "Dir::Etc::Preferences": r / "preferences",
            "Dir::Etc::PreferencesParts": r / "preferences.d",
            "Dir::State::Lists": r / "lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "Debug::NoLocking": "1",  # a private, fresh state dir: nothing else can hold its locks
            "APT::Sandbox::User": "root",  # the download dir is not readable by _apt
        }
        cmd = ["apt-get", "-q"]
        for key, value in opts.items():
            cmd += ["-o", f"{key}={value}"]
        return cmd + list(args)


def _fetch_source(package: str, version: str, options: dict, out: Path, log_file: Path) -> None:
    """Download and extract <package>=<version> into out/<package>."""
    _require_tools(FETCH_TOOLS)
    if not KEYRING.is_file():
        raise BuildError(f"{KEYRING} missing: install the Debian package debian-archive-keyring")
    env = {**os.environ, "LC_ALL": "C"}
    with tempfile.TemporaryDirectory(prefix="hil-apt-") as tmp:
        apt = IsolatedApt(Path(tmp), _mirror(options))
        apt.setup()
        try:
            _run(
                apt.command("update"),
                what=f"apt-get update for {SOURCE_SUITE}",
                timeout=APT_TIMEOUT,
                log_file=log_file,
                env=env,
            )
            _run(
                apt.command("source", "--download-only", f"{package}={version}"),
                what="apt-get source",
                timeout=APT_TIMEOUT,
                log_file=log_file,
                env=env,
                cwd=apt.root / "download",
            )
        except BuildError as e:
            raise BuildError(
                f"could not download Debian source {package}={version} from {SOURCE_SUITE}: {e}"
            ) from None
        dscs = list((apt.root / "download").glob("*.dsc"))
        if len(dscs) != 1:
            raise BuildError(f"apt-get source {package}={version} gave no .dsc (log: {log_file})")
        # dpkg-source checks the files against the .dsc's checksums, which apt checked against the
        # signed index; without debian-keyring it only warns that it cannot check the .dsc signature
        _run(
            ["dpkg-source", "-x", str(dscs[0]), str(out / package)],
            what="dpkg-source -x",
            timeout=EXTRACT_TIMEOUT,
            log_file=log_file,
            env=env,
        )


def source_tree(ctx: BuildContext, version: str, options: dict, package: str = SOURCE_PACKAGE) -> Path:
    def build(out: Path) -> None:
        start = time.monotonic()
        ctx.log(f"mps2: fetching Debian source {package}={version} ...")
        with _step_log(f"src-{package}", out) as log_file:
            _fetch_source(package, version, options, out, log_file)
        ctx.log(f"mps2: fetched and extracted {package}={version} in {_elapsed(start)}")

    path, _, _ = cached_build(f"src-{package}", {"version": version}, build)
    return path / package


def net_source_tree(ctx: BuildContext, versions: dict[str, str], options: dict) -> Path:
    """MicroPython with lwIP and mbedTLS in lib/ and the board folder from firmware_c/mps2."""
    _require_tools(NET_TOOLS)
    inputs: dict[str, str | bytes | Path] = {f"{k}_version": v for k, v in versions.items()}
    firmware_c = resource("firmware_c") / "mps2"
    inputs["firmware_c"] = firmware_c

    def build(out: Path) -> None:
        start = time.monotonic()
        trees = {pkg: source_tree(ctx, version, options, pkg) for pkg, version in versions.items()}
        ctx.log(f"mps2: assembling MicroPython with lwIP {versions['lwip']} and mbedTLS {versions['mbedtls']} ...")
        with _step_log("src-mps2-net", out) as log_file:
            tree = out / "micropython"
            shutil.copytree(trees["micropython"], tree, symlinks=True)
            for lib in ("lwip", "mbedtls"):
                shutil.rmtree(tree / "lib" / lib, ignore_errors=True)
                shutil.copytree(trees[lib], tree / "lib" / lib, symlinks=True)
            _apply_patch(tree, tree / DEBIAN_SYSTEM_MBEDTLS_PATCH, log_file, reverse=True)
            _apply_patch(tree, firmware_c / "qemu-port.patch", log_file)
            shutil.copytree(firmware_c, tree / "ports" / "qemu" / "boards" / NET_BOARD,
                            ignore=shutil.ignore_patterns("*.patch", "README.md"))
        ctx.log(f"mps2: assembled the network source tree in {_elapsed(start)}")

    path, _, _ = cached_build("src-mps2-net", inputs, build)
    return path / "micropython"


def _apply_patch(tree: Path, patch: Path, log_file: Path, reverse: bool = False) -> None:
    if not patch.is_file():
        raise BuildError(f"patch {patch} is missing (is the source version the one pinned in the target file?)")
    cmd = ["patch", "-p1", "--batch", "--forward" if not reverse else "-R", "-i", str(patch)]
    try:
        _run(cmd, what=f"applying {patch.name}", timeout=EXTRACT_TIMEOUT, log_file=log_file, cwd=tree)
    except BuildError as e:
        raise BuildError(
            f"{patch.name} does not apply to this MicroPython source ({e}); the patch is written for "
            f"micropython={DEFAULT_SOURCE_VERSION}: pin that source_version or update the patch"
        ) from None


# ---------------------------------------------------------------------------------------------
# building


@contextmanager
def _step_log(kind: str, out: Path) -> Iterator[Path]:
    """A fresh log for one build step. Error messages point at it, so a failed step leaves it in the
    cache's logs/ dir; a successful one moves it into its output as build.log."""
    d = cache_root() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    log_file = d / f"{kind}-{os.getpid()}.log"
    log_file.write_text("")
    yield log_file
    shutil.move(log_file, out / "build.log")


def _make_env(mpy_cross: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "LC_ALL": "C", "PYTHONDONTWRITEBYTECODE": "1"}  # keep the cached tree pristine
    env.pop("MAKEFLAGS", None)
    if mpy_cross is not None:
        env["MICROPY_MPYCROSS"] = str(mpy_cross)  # read by make and by tools/makemanifest.py
    return env


def mpy_cross(ctx: BuildContext, src: Path, version: str) -> Path:
    def build(out: Path) -> None:
        start = time.monotonic()
        ctx.log("mps2: building mpy-cross ...")
        with _step_log("mpy-cross", out) as log_file, tempfile.TemporaryDirectory(prefix="hil-mpy-") as bdir:
            _run(
                ["make", "-C", str(src / "mpy-cross"), "-j2", f"BUILD={bdir}", f"PYTHON={sys.executable}"],
                what="building mpy-cross",
                timeout=MAKE_TIMEOUT,
                log_file=log_file,
                env=_make_env(),
            )
            shutil.copy2(Path(bdir) / "mpy-cross", out / "mpy-cross")
        ctx.log(f"mps2: built mpy-cross in {_elapsed(start)}")

    path, _, _ = cached_build("mpy-cross", {"version": version, "builder": BUILDER_VERSION}, build)
    return path / "mpy-cross"


def frozen_files(firmware_py: Path, freeze: str | Sequence[str]) -> list[Path]:
    if freeze == "all":
        return sorted(p for p in firmware_py.glob("*.py") if p.is_file())
    if isinstance(freeze, str):
        freeze = [freeze]
    if not isinstance(freeze, list | tuple):
        raise ConfigError(f"image option 'freeze' must be \"all\" or a list of file names, not {freeze!r}")
    files = []
    for name in freeze:
        path = firmware_py / name
        if path.parent != firmware_py or path.suffix != ".py" or not path.is_file():
            raise ConfigError(
                f"image option 'freeze' names {name!r}, which is not a .py file directly in "
                f'{firmware_py}; use "all" or file names from there'
            )
        files.append(path)
    return sorted(set(files))


def manifest_text(files: Sequence[Path]) -> str:
    # relative to the manifest's own directory, so the text (a cache input) does not depend on paths
    names = ", ".join(repr(f.name) for f in files)
    return f"freeze('modules', ({names},))\n" if files else ""


def _check_compiles(files: Sequence[Path], mpy_cross_bin: Path, work: Path, log_file: Path) -> None:
    """Compile each module as the freezer will, so a broken one is named instead of a make error."""
    for f in files:
        cmd = [str(mpy_cross_bin), "-march=armv7m", "-o", str(work / (f.stem + ".mpy")), "-s", f.name, str(f)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=60)
        except subprocess.TimeoutExpired:
            raise BuildError(f"mpy-cross timed out compiling {f}") from None
        if proc.returncode != 0:
            with log_file.open("a") as log:
                log.write(f"\n$ mpy-cross {f}\n{proc.stdout}{proc.stderr}")
            detail = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            where = next((m.group(1) for ln in detail if (m := re.search(r"line (\d+)", ln))), "?")
            raise BuildError(
                f"{f} does not compile for {BOARD} (line {where}): "
                f"{detail[-1] if detail else 'mpy-cross failed'}"
            )


def _build_firmware(
    ctx: BuildContext,
    src: Path,
    mpy_cross_bin: Path,
    files: Sequence[Path],
    manifest: str,
    out: Path,
    log_file: Path,
    board: str = BOARD,
    heap_kb: int = DEFAULT_HEAP_KB,
) -> None:
    start = time.monotonic()
    names = ", ".join(f.name for f in files) or "none"
    ctx.log(f"mps2: building firmware for {board} (frozen: {names}) ...")
    with tempfile.TemporaryDirectory(prefix="hil-mps2-") as tmp:
        work = Path(tmp)
        (work / "modules").mkdir()
        for f in files:
            shutil.copy2(f, work / "modules" / f.name)
        _check_compiles(files, mpy_cross_bin, work, log_file)
        manifest_arg = ""
        if manifest:
            (work / "manifest.py").write_text(manifest)
            manifest_arg = str(work / "manifest.py")
        _run(
            [
                "make",
                "-C",
                str(src / "ports" / "qemu"),
                "-j2",
                f"BOARD={board}",
                f"BUILD={work / 'build'}",
                f"PYTHON={sys.executable}",
                f"FROZEN_MANIFEST={manifest_arg}",
                f"MICROPY_HEAP_SIZE={heap_kb * 1024}",
            ],
            what=f"building {board} firmware",
            timeout=MAKE_TIMEOUT,
            log_file=log_file,
            env=_make_env(mpy_cross_bin),
        )
        for name in ("firmware.elf", "firmware.map"):
            shutil.copy2(work / "build" / name, out / name)
    (out / "manifest.py").write_text(manifest)
    ctx.log(f"mps2: built firmware in {_elapsed(start)}")


def _net_versions(version: str, options: dict) -> dict[str, str] | None:
    """Source versions of a network build, or None for the plain port."""
    lwip, mbedtls = options.get("lwip_version"), options.get("mbedtls_version")
    if not lwip and not mbedtls:
        return None
    if not (lwip and mbedtls):
        raise ConfigError("keys 'image.lwip_version' and 'image.mbedtls_version' go together: set both or neither")
    return {"micropython": version, "lwip": str(lwip), "mbedtls": str(mbedtls)}


def build(ctx: BuildContext, options: dict) -> Image:
    version = str(options.get("source_version", DEFAULT_SOURCE_VERSION))
    net = _net_versions(version, options)  # the target file's mistakes first, then the machine's
    board = NET_BOARD if net else BOARD
    heap_kb = options.get("heap_kb", DEFAULT_HEAP_KB)
    if not isinstance(heap_kb, int) or isinstance(heap_kb, bool) or not 64 <= heap_kb <= 3072:
        raise ConfigError(f"key 'image.heap_kb' must be a whole number of KiB from 64 to 3072, not {heap_kb!r}")
    _require_tools(BUILD_TOOLS)
    _require_picolibc()
    files = frozen_files(ctx.firmware_py, options.get("freeze", "all"))
    manifest = manifest_text(files)
    inputs: dict[str, str | bytes | Path] = {
        "source_version": version,
        "board": board,
        "manifest": manifest,
        "builder": BUILDER_VERSION,
        "heap_kb": str(heap_kb),
    }
    if net:
        firmware_c = resource("firmware_c") / "mps2"
        inputs |= {"lwip_version": net["lwip"], "mbedtls_version": net["mbedtls"], "firmware_c": firmware_c}
    inputs.update({f"frozen/{f.name}": f.read_bytes() for f in files})

    def build_elf(out: Path) -> None:
        plain = source_tree(ctx, version, options)
        src = net_source_tree(ctx, net, options) if net else plain
        mpy_cross_bin = mpy_cross(ctx, plain, version)
        with _step_log(board, out) as log_file:
            _build_firmware(ctx, src, mpy_cross_bin, files, manifest, out, log_file, board, heap_kb)

    path, digest, cached = cached_build("mps2_an385", inputs, build_elf)
    info = {"micropython_source": version}
    if net:
        info |= {"lwip_source": net["lwip"], "mbedtls_source": net["mbedtls"]}
    return Image(digest=digest, files={"kernel": path / "firmware.elf"}, cached=cached, info=info)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m harness.images.mps2 [module.py ...]: build (freezing all of firmware_py by default)."""
    args = list(sys.argv[1:] if argv is None else argv)
    firmware_py = resource("firmware_py")
    ctx = BuildContext(firmware_py=firmware_py, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        image = build(ctx, {"freeze": args} if args else {})
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(image.files["kernel"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
