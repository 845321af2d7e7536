"""Debian source packages as build inputs: ``apt-get source PACKAGE=VERSION`` through an isolated
apt configuration (its own sources list for the pinned suite, the system's Debian mirror, the
archive keyring: the signed index verifies what is fetched), extracted with dpkg-source and cached
by package and version. Plus the small subprocess helpers every builder step uses: a timeout, the
process group killed on the way out, one error line pointing at the step's log."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_root, cached_build
from harness.errors import BuildError

SUITE = "trixie"  # the pinned Debian suite source packages come from
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# tool -> Debian package that provides it
FETCH_TOOLS = {"apt-get": "apt", "dpkg-source": "dpkg-dev", "xz": "xz-utils"}
APT_TIMEOUT = 300
EXTRACT_TIMEOUT = 120


# ---------------------------------------------------------------------------------------------
# subprocesses


def run_step(
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
        full = next((ln.strip() for ln in out.splitlines() if "No space left on device" in ln), None)
        if full:  # a full disk under a tool: the tool's line names the file; say what to do
            raise BuildError(
                f"{what} failed: {full}: free space there, or set HIL_CACHE (and TMPDIR) to a disk with room "
                f"(log: {log_file})"
            )
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


def require_tools(tools: Mapping[str, str]) -> None:
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise BuildError(f"'{tool}' not found: install the Debian package {package}")


def elapsed(start: float) -> str:
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
            f"source packages from; set image option 'mirror'"
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
            f"deb-src [signed-by={KEYRING}] {self.mirror.rstrip('/')} {SUITE} main\n"
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


# apt's words for a mirror it could not reach (apt-get update only warns about these and exits 0;
# the next `apt-get source` then blames missing deb-src entries)
_UNREACHABLE = re.compile(
    r"Temporary failure resolving|Could not resolve|Could not connect|Connection timed out|Connection failed"
    r"|Network is unreachable|No route to host|Unable to connect|Connection refused|Cannot initiate the connection",
    re.IGNORECASE,
)
_FETCH_FAILED = re.compile(r"^(?:W|E|Err:\d+): .*?Failed to fetch (\S+)\s+(.*)$|^Err:\d+ (\S+.*)$", re.MULTILINE)


def _mirror_problem(output: str) -> tuple[bool, str] | None:
    """(unreachable, apt's reason) when apt could not fetch from the mirror, else None."""
    reasons = []
    for m in _FETCH_FAILED.finditer(output):
        if m.group(1):
            reasons.append(f"{m.group(1)}: {m.group(2).strip()}")
    lines = [ln.strip() for ln in output.splitlines()]
    unreachable = next((ln for ln in lines if _UNREACHABLE.search(ln)), None)
    if unreachable:
        return True, next((r for r in reasons if _UNREACHABLE.search(r)), unreachable)
    return (False, reasons[0]) if reasons else None


def _unreachable_error(mirror: str, package: str, version: str, reason: str, log_file: Path) -> BuildError:
    return BuildError(
        f"cannot reach the Debian mirror {mirror} to fetch the source {package}={version} ({reason}): check the "
        f"network (or the proxy in /etc/apt/apt.conf.d), or set image option 'mirror' to a reachable mirror "
        f"(log: {log_file})"
    )


def _fetch_source(package: str, version: str, options: dict, out: Path, log_file: Path) -> None:
    """Download and extract <package>=<version> into out/<package>."""
    require_tools(FETCH_TOOLS)
    if not KEYRING.is_file():
        raise BuildError(f"{KEYRING} missing: install the Debian package debian-archive-keyring")
    env = {**os.environ, "LC_ALL": "C"}
    with tempfile.TemporaryDirectory(prefix="hil-apt-") as tmp:
        mirror = _mirror(options)
        apt = IsolatedApt(Path(tmp), mirror)
        apt.setup()

        def step(*args: str, what: str, cwd: Path | None = None) -> str:
            """One apt-get step; a mirror it cannot reach (or no answer) is said as such, with the fix."""
            try:
                return run_step(apt.command(*args), what=what, timeout=APT_TIMEOUT, log_file=log_file, env=env,
                                cwd=cwd)  # fmt: skip
            except BuildError as e:
                problem = _mirror_problem(log_file.read_text(errors="replace"))
                if "timed out" in str(e) or (problem and problem[0]):
                    reason = problem[1] if problem and problem[0] else f"no answer within {APT_TIMEOUT} s"
                    raise _unreachable_error(mirror, package, version, reason, log_file) from None
                raise BuildError(f"could not download Debian source {package}={version} from {SUITE}: {e}") from None

        # apt-get update only warns about a mirror it could not use, and exits 0
        problem = _mirror_problem(step("update", what=f"apt-get update for {SUITE}"))
        if problem and problem[0]:
            raise _unreachable_error(mirror, package, version, problem[1], log_file)
        if problem:
            raise BuildError(
                f"the Debian mirror {mirror} did not serve the {SUITE} source index ({problem[1]}): set image "
                f"option 'mirror' to a Debian mirror that carries {SUITE} (log: {log_file})"
            )
        step("source", "--download-only", f"{package}={version}", what="apt-get source", cwd=apt.root / "download")
        dscs = list((apt.root / "download").glob("*.dsc"))
        if len(dscs) != 1:
            raise BuildError(f"apt-get source {package}={version} gave no .dsc (log: {log_file})")
        # dpkg-source checks the files against the .dsc's checksums, which apt checked against the
        # signed index; without debian-keyring it only warns that it cannot check the .dsc signature
        run_step(
            ["dpkg-source", "-x", str(dscs[0]), str(out / package)],
            what="dpkg-source -x",
            timeout=EXTRACT_TIMEOUT,
            log_file=log_file,
            env=env,
        )


@contextmanager
def step_log(kind: str, out: Path) -> Iterator[Path]:
    """A fresh log for one build step. Error messages point at it, so a failed step leaves it in the
    cache's logs/ dir; a successful one moves it into its output as build.log."""
    d = cache_root() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    log_file = d / f"{kind}-{os.getpid()}.log"
    log_file.write_text("")
    yield log_file
    shutil.move(log_file, out / "build.log")


def source_tree(package: str, version: str, options: dict, log: Callable[[str], None] = print) -> Path:
    """The extracted Debian source package ``package=version`` (fetched once, then from the cache)."""

    def build(out: Path) -> None:
        start = time.monotonic()
        log(f"fetching Debian source {package}={version} ...")
        with step_log(f"src-{package}", out) as log_file:
            _fetch_source(package, version, options, out, log_file)
        log(f"fetched and extracted {package}={version} in {elapsed(start)}")

    path, _, _ = cached_build(f"src-{package}", {"version": version}, build)
    return path / package
