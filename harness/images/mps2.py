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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness.cache import cached_build
from harness.errors import BuildError, ConfigError, HarnessError
from harness.images import BuildContext, Image, debian_source
from harness.images.debian_source import EXTRACT_TIMEOUT, elapsed, run_step, step_log
from harness.images.debian_source import require_tools as _require_tools
from harness.paths import resource

BUILDER_VERSION = "mps2-2"
DEFAULT_SOURCE_VERSION = "1.25.0+ds-1"
SOURCE_PACKAGE = "micropython"
BOARD = "MPS2_AN385"
NET_BOARD = "MPS2_AN385_HIL"  # firmware_c/mps2, copied into ports/qemu/boards
# Debian's patch that makes extmod link the system's libmbedtls; reversed for a firmware build
DEBIAN_SYSTEM_MBEDTLS_PATCH = "debian/patches/0006-extmod-Use-system-mbedtls.patch"
DEFAULT_HEAP_KB = 140
BUILD_TOOLS = {
    "make": "make",
    "gcc": "gcc",  # host compiler for mpy-cross
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "dpkg-parsechangelog": "dpkg-dev",  # Debian's patched py.mk makes the version header with it
}
NET_TOOLS = {"patch": "patch"}

MAKE_TIMEOUT = 900




def source_tree(ctx: BuildContext, version: str, options: dict, package: str = SOURCE_PACKAGE) -> Path:
    return debian_source.source_tree(package, version, options, lambda m: ctx.log(f"mps2: {m}"))


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
        with step_log("src-mps2-net", out) as log_file:
            tree = out / "micropython"
            shutil.copytree(trees["micropython"], tree, symlinks=True)
            for lib in ("lwip", "mbedtls"):
                shutil.rmtree(tree / "lib" / lib, ignore_errors=True)
                shutil.copytree(trees[lib], tree / "lib" / lib, symlinks=True)
            _apply_patch(tree, tree / DEBIAN_SYSTEM_MBEDTLS_PATCH, log_file, reverse=True)
            _apply_patch(tree, firmware_c / "qemu-port.patch", log_file)
            _apply_patch(tree, firmware_c / "modlwip.patch", log_file)  # two lifetime bugs in modlwip
            shutil.copytree(firmware_c, tree / "ports" / "qemu" / "boards" / NET_BOARD,
                            ignore=shutil.ignore_patterns("*.patch", "README.md"))
        ctx.log(f"mps2: assembled the network source tree in {elapsed(start)}")

    path, _, _ = cached_build("src-mps2-net", inputs, build)
    return path / "micropython"


def _apply_patch(tree: Path, patch: Path, log_file: Path, reverse: bool = False) -> None:
    if not patch.is_file():
        raise BuildError(f"patch {patch} is missing (is the source version the one pinned in the target file?)")
    cmd = ["patch", "-p1", "--batch", "--forward" if not reverse else "-R", "-i", str(patch)]
    try:
        run_step(cmd, what=f"applying {patch.name}", timeout=EXTRACT_TIMEOUT, log_file=log_file, cwd=tree)
    except BuildError as e:
        raise BuildError(
            f"{patch.name} does not apply to this MicroPython source ({e}); the patch is written for "
            f"micropython={DEFAULT_SOURCE_VERSION}: pin that source_version or update the patch"
        ) from None


# ---------------------------------------------------------------------------------------------
# building


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
        with step_log("mpy-cross", out) as log_file, tempfile.TemporaryDirectory(prefix="hil-mpy-") as bdir:
            run_step(
                ["make", "-C", str(src / "mpy-cross"), "-j2", f"BUILD={bdir}", f"PYTHON={sys.executable}"],
                what="building mpy-cross",
                timeout=MAKE_TIMEOUT,
                log_file=log_file,
                env=_make_env(),
            )
            shutil.copy2(Path(bdir) / "mpy-cross", out / "mpy-cross")
        ctx.log(f"mps2: built mpy-cross in {elapsed(start)}")

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


def frozen_packages(packages: object) -> list[str]:
    """image.freeze_packages: folders of the MicroPython tree with a manifest.py (extmod/asyncio)."""
    if not isinstance(packages, list | tuple) or not all(isinstance(p, str) for p in packages):
        raise ConfigError(f"image option 'freeze_packages' must be a list of folders of the MicroPython tree "
                          f'such as ["extmod/asyncio"], not {packages!r}')  # fmt: skip
    for p in packages:
        if p.startswith("/") or ".." in Path(p).parts or not re.fullmatch(r"[A-Za-z0-9_./-]+", p):
            raise ConfigError(f"image option 'freeze_packages' names {p!r}: give a folder inside the MicroPython "
                              'tree, such as "extmod/asyncio"')  # fmt: skip
    return list(packages)


def manifest_text(files: Sequence[Path], packages: Sequence[str] = ()) -> str:
    # relative to the manifest's own directory, so the text (a cache input) does not depend on paths
    names = ", ".join(repr(f.name) for f in files)
    text = "".join(f'include("$(MPY_DIR)/{p}")\n' for p in packages)
    return text + (f"freeze('modules', ({names},))\n" if files else "")


def _check_packages(src: Path, packages: Sequence[str]) -> None:
    for p in packages:
        if not (src / p / "manifest.py").is_file():
            raise ConfigError(
                f"image option 'freeze_packages' names {p!r}, which has no manifest.py in MicroPython's "
                f'source tree ({src}); name a folder that has one, such as "extmod/asyncio"'
            )


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
        run_step(
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
    ctx.log(f"mps2: built firmware in {elapsed(start)}")


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
    packages = frozen_packages(options.get("freeze_packages", []))
    manifest = manifest_text(files, packages)
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
        _check_packages(src, packages)
        mpy_cross_bin = mpy_cross(ctx, plain, version)
        with step_log(board, out) as log_file:
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
