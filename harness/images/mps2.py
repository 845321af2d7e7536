"""The 'mps2_micropython' builder: MicroPython's ports/qemu for BOARD=MPS2_AN385 (QEMU -M mps2-an385).

The source is Debian's ``micropython`` source package (pinned version, fetched from trixie with an
isolated apt configuration whose signed index verifies it), built with Debian's gcc-arm-none-eabi and
picolibc. The on-board modules in firmware_py are frozen into the ELF. Three cache layers keep
rebuilds cheap: the extracted source (per version), mpy-cross (per version) and the firmware ELF
(per version + frozen files + manifest + builder version). The cached source tree is never written
to: every build puts its output in its own BUILD directory."""

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

BUILDER_VERSION = "mps2-1"
DEFAULT_SOURCE_VERSION = "1.25.0+ds-1"
SOURCE_PACKAGE = "micropython"
SOURCE_SUITE = "trixie"
BOARD = "MPS2_AN385"
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


def _fetch_source(version: str, options: dict, out: Path, log_file: Path) -> None:
    """Download and extract micropython=<version> into out/micropython."""
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
                apt.command("source", "--download-only", f"{SOURCE_PACKAGE}={version}"),
                what="apt-get source",
                timeout=APT_TIMEOUT,
                log_file=log_file,
                env=env,
                cwd=apt.root / "download",
            )
        except BuildError as e:
            raise BuildError(
                f"could not download Debian source {SOURCE_PACKAGE}={version} from {SOURCE_SUITE}: {e}"
            ) from None
        dscs = list((apt.root / "download").glob("*.dsc"))
        if len(dscs) != 1:
            raise BuildError(f"apt-get source {SOURCE_PACKAGE}={version} gave no .dsc (log: {log_file})")
        # dpkg-source checks the files against the .dsc's checksums, which apt checked against the
        # signed index; without debian-keyring it only warns that it cannot check the .dsc signature
        _run(
            ["dpkg-source", "-x", str(dscs[0]), str(out / "micropython")],
            what="dpkg-source -x",
            timeout=EXTRACT_TIMEOUT,
            log_file=log_file,
            env=env,
        )


def source_tree(ctx: BuildContext, version: str, options: dict) -> Path:
    def build(out: Path) -> None:
        start = time.monotonic()
        ctx.log(f"mps2: fetching Debian source {SOURCE_PACKAGE}={version} ...")
        with _step_log("src-micropython", out) as log_file:
            _fetch_source(version, options, out, log_file)
        ctx.log(f"mps2: fetched and extracted {SOURCE_PACKAGE}={version} in {_elapsed(start)}")

    path, _, _ = cached_build("src-micropython", {"version": version}, build)
    return path / "micropython"


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
) -> None:
    start = time.monotonic()
    names = ", ".join(f.name for f in files) or "none"
    ctx.log(f"mps2: building firmware for {BOARD} (frozen: {names}) ...")
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
                f"BOARD={BOARD}",
                f"BUILD={work / 'build'}",
                f"PYTHON={sys.executable}",
                f"FROZEN_MANIFEST={manifest_arg}",
            ],
            what=f"building {BOARD} firmware",
            timeout=MAKE_TIMEOUT,
            log_file=log_file,
            env=_make_env(mpy_cross_bin),
        )
        for name in ("firmware.elf", "firmware.map"):
            shutil.copy2(work / "build" / name, out / name)
    (out / "manifest.py").write_text(manifest)
    ctx.log(f"mps2: built firmware in {_elapsed(start)}")


def build(ctx: BuildContext, options: dict) -> Image:
    version = str(options.get("source_version", DEFAULT_SOURCE_VERSION))
    _require_tools(BUILD_TOOLS)
    _require_picolibc()
    files = frozen_files(ctx.firmware_py, options.get("freeze", "all"))
    manifest = manifest_text(files)
    inputs: dict[str, str | bytes | Path] = {
        "source_version": version,
        "board": BOARD,
        "manifest": manifest,
        "builder": BUILDER_VERSION,
    }
    inputs.update({f"frozen/{f.name}": f.read_bytes() for f in files})

    def build_elf(out: Path) -> None:
        src = source_tree(ctx, version, options)
        mpy_cross_bin = mpy_cross(ctx, src, version)
        with _step_log(BOARD, out) as log_file:
            _build_firmware(ctx, src, mpy_cross_bin, files, manifest, out, log_file)

    path, digest, cached = cached_build("mps2_an385", inputs, build_elf)
    return Image(
        digest=digest,
        files={"kernel": path / "firmware.elf"},
        cached=cached,
        info={"micropython_source": version},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """python -m harness.images.mps2 [module.py ...]: build (freezing all of firmware_py by default)."""
    args = list(sys.argv[1:] if argv is None else argv)
    firmware_py = Path(__file__).resolve().parents[2] / "firmware_py"
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
