"""Copy files to a board's file system over the raw REPL (mpremote's way), verified by read-back.

Each file is opened on the board once and written in chunks of at most ``chunk`` bytes, one
raw-REPL exec per chunk (a bytes literal; raw-paste or paced writes keep the link from overrunning
the board). Where the board has ``os.rename`` the data goes to ``NAME.hil-new`` first and is renamed
into place only once complete, so an interrupted copy leaves the old file intact. Then the board
reads the file back and hashes it itself — ``hashlib.sha256`` where it has it, else
``binascii.crc32``, else a table-free CRC-32 in Python (the micro:bit) — and the host compares
that with its own hash of the bytes it sent."""

from __future__ import annotations

import hashlib
import time
import zlib
from pathlib import Path

from harness.errors import ConsoleTimeout, HarnessError, one_line
from harness.flash import FileResult, FlashError, FlashReport, Progress, VerifyError
from harness.io.repl import BoardException, ExecTimeout

MIN_CHUNK, MAX_CHUNK = 16, 4096
READ_BLOCK = 128  # bytes per read when hashing on the board (heap-friendly)
TMP_SUFFIX = ".hil-new"

_PROBE = """\
_k = 'crc32py'
try:
    import hashlib
    hashlib.sha256
    _k = 'sha256'
except (ImportError, AttributeError):
    try:
        import binascii
        binascii.crc32
        _k = 'crc32'
    except (ImportError, AttributeError):
        pass
try:
    import os
    _r = hasattr(os, 'rename')
    _m = hasattr(os, 'mkdir')
except ImportError:
    _r = _m = False
print(repr((_k, _r, _m)))
del _k, _r, _m
"""

# One function per kind, defined on the board once per session; each prints repr((size, digest)).
_HASHERS = {
    "sha256": """\
def _hil_hash(n):
    import hashlib
    h = hashlib.sha256()
    s = 0
    f = open(n, 'rb')
    while True:
        b = f.read(%d)
        if not b:
            break
        s += len(b)
        h.update(b)
    f.close()
    print(repr((s, h.digest())))
""",
    "crc32": """\
def _hil_hash(n):
    import binascii
    c = 0
    s = 0
    f = open(n, 'rb')
    while True:
        b = f.read(%d)
        if not b:
            break
        s += len(b)
        c = binascii.crc32(b, c)
    f.close()
    print(repr((s, c & 0xFFFFFFFF)))
""",
    "crc32py": """\
def _hil_hash(n):
    c = 0xFFFFFFFF
    s = 0
    f = open(n, 'rb')
    while True:
        b = f.read(%d)
        if not b:
            break
        s += len(b)
        for x in b:
            c ^= x
            for _ in range(8):
                c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    f.close()
    print(repr((s, c ^ 0xFFFFFFFF)))
""",
}


def host_digest(kind: str, data: bytes) -> str:
    if kind == "sha256":
        return "sha256:" + hashlib.sha256(data).hexdigest()
    return f"crc32:{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def _board_digest_text(kind: str, value: object) -> str:
    if kind == "sha256":
        assert isinstance(value, bytes)
        return "sha256:" + value.hex()
    assert isinstance(value, int)
    return f"crc32:{value & 0xFFFFFFFF:08x}"


def default_chunk(heap_bytes: int) -> int:
    """Bytes per write from the board's heap: a chunk's source (up to 4x its size as a bytes literal)
    must compile in a fraction of it. 10 KB micro:bit -> 250; 140 KB and up -> 2048."""
    if heap_bytes <= 0:
        return 256
    return max(64, min(2048, heap_bytes // 40))


def load_files(names: list[str], firmware_py: Path) -> list[tuple[str, bytes]]:
    """firmware_py file names (or paths) -> [(name on the board, content)]."""
    out = []
    for name in names:
        path = Path(name) if Path(name).is_absolute() else firmware_py / name
        if not path.is_file():
            raise FlashError(f"file to flash {name!r} not found (looked in {path.parent}); fix 'files' in the lab file")
        out.append((path.name if Path(name).is_absolute() else name, path.read_bytes()))
    return out


class FsFlasher:
    """Copy files onto one running board (a harness.board.Board, or anything with exec/eval/name).

    Lossy links (a paced UART behind RFC 2217 whose pacing the network does not keep) are
    survived, not hidden: a chunk that arrives short is refused on the board and sent again, a
    file whose read-back differs is written again (``attempts`` times in all); every resend is
    counted in the report. A board that goes away is never retried."""

    ATTEMPTS = 3

    def __init__(self, board, *, chunk: int = 0, progress: Progress | None = None, attempts: int = ATTEMPTS) -> None:
        self.board = board
        heap = getattr(getattr(board, "facts", None), "heap_bytes", 0)
        self.chunk = chunk or default_chunk(heap)
        if not MIN_CHUNK <= self.chunk <= MAX_CHUNK:
            raise FlashError(f"{board.name}: chunk size {self.chunk} out of range {MIN_CHUNK}..{MAX_CHUNK} bytes")
        self.progress = progress or (lambda done, total: None)
        self.attempts = max(1, attempts)
        self.kind = ""
        self.has_rename = self.has_mkdir = False
        self.resends = 0  # code or chunks sent again after arriving damaged

    # --- board-side helpers -----------------------------------------------------------------------
    def _exec(self, code: str) -> str:
        """Run code; a SyntaxError or a refused chunk (bytes lost on the way) or a stalled console is
        link damage: resend, up to ``attempts`` times. Other board errors and a dead board raise."""
        for attempt in range(1, self.attempts + 1):
            try:
                return self.board.exec(code)
            except BoardException as exc:
                damaged = exc.type_name in ("SyntaxError", "IndentationError") or "hil: chunk" in exc.message
                if not damaged or attempt == self.attempts:
                    raise
            except ConsoleTimeout:
                repl = getattr(self.board, "repl", None)
                if repl is None or attempt == self.attempts:
                    raise
                repl.enter_raw()  # the board may be waiting for the rest of damaged code
            self.resends += 1
        raise AssertionError("unreachable")

    def _run(self, code: str, what: str) -> str:
        try:
            return self._exec(code)
        except BoardException as exc:
            raise FlashError(f"{self.board.name}: {what}: the board said {one_line(exc.message)}") from None
        except (HarnessError, ExecTimeout) as exc:
            raise FlashError(f"{self.board.name}: {what}: {one_line(exc)}") from None

    def probe(self) -> str:
        if not self.kind:
            import ast

            out = self._run(_PROBE, "probing the board's hashlib/os")
            self.kind, self.has_rename, self.has_mkdir = ast.literal_eval(out.strip().splitlines()[-1])
            self._run(_HASHERS[self.kind] % READ_BLOCK, "defining the read-back hash")
        return self.kind

    def board_digest(self, name: str) -> tuple[int, str] | None:
        """(size, digest) of ``name`` as the board reads it; None if it does not exist."""
        import ast

        self.probe()
        try:
            out = self._exec(f"_hil_hash({name!r})")
        except OSError as exc:  # the board's OSError (BoardOSError): ENOENT
            message = getattr(exc, "message", str(exc))
            if getattr(exc, "errno", None) == 2 or "ENOENT" in message or "not found" in message:
                return None
            raise FlashError(f"{self.board.name}: reading back {name}: {one_line(message)}") from None
        except BoardException as exc:
            raise FlashError(f"{self.board.name}: reading back {name}: {one_line(exc.message)}") from None
        except (HarnessError, ExecTimeout) as exc:
            raise FlashError(f"{self.board.name}: reading back {name}: {one_line(exc)}") from None
        size, value = ast.literal_eval(out.strip().splitlines()[-1])
        return size, _board_digest_text(self.kind, value)

    # --- copy + verify ---------------------------------------------------------------------------
    def flash(self, files: list[tuple[str, bytes]], *, force: bool = False) -> FlashReport:
        report = FlashReport(device=self.board.name, method="fs")
        resends_before = self.resends
        self.probe()
        total = sum(len(data) for _, data in files)
        done = 0
        self.progress(0, total)
        started = time.monotonic()
        rewrites = 0
        for name, data in files:
            want = host_digest(self.kind, data)
            if not force and self.board_digest(name) == (len(data), want):
                report.files.append(FileResult(name, len(data), want, written=False))
                done += len(data)
                self.progress(done, total)
                continue
            target = name + TMP_SUFFIX if self.has_rename else name
            for attempt in range(1, self.attempts + 1):
                self._write(name, target, data, done, total)
                report.bytes_written += len(data)
                got = self.board_digest(target)
                if got == (len(data), want):
                    break
                if attempt == self.attempts:
                    size, digest = got or (0, "missing")
                    kept = f"; the previous {name} is kept" if target != name else ""
                    raise VerifyError(
                        f"{self.board.name}: {name} reads back as {size} B {digest}, but {len(data)} B {want} were "
                        f"written ({attempt} attempts): the copy on the board is corrupt{kept}; check the link and "
                        f"flash again"
                    )
                rewrites += 1
            if target != name:  # complete and verified: into place, and read back under its name
                self._run(
                    f"import os\ntry:\n    os.rename({target!r}, {name!r})\nexcept OSError:\n"
                    f"    os.remove({name!r})\n    os.rename({target!r}, {name!r})",
                    f"renaming {target} to {name}",
                )
                if self.board_digest(name) != (len(data), want):
                    raise VerifyError(f"{self.board.name}: {name} differs from the verified {target} after renaming")
            done += len(data)
            report.files.append(FileResult(name, len(data), want))
        report.seconds = time.monotonic() - started
        resends = self.resends - resends_before
        if resends or rewrites:
            report.notes.append(f"link damage repaired: {resends} resends, {rewrites} file rewrites")
        return report

    def verify(self, files: list[tuple[str, bytes]]) -> list[FileResult]:
        """Check files already on the board (e.g. from a HEX) against the host's copies."""
        results = []
        self.probe()
        for name, data in files:
            want = host_digest(self.kind, data)
            got = self.board_digest(name)
            if got is None:
                raise VerifyError(f"{self.board.name}: {name} is not on the board ({len(data)} B expected)")
            if got != (len(data), want):
                raise VerifyError(
                    f"{self.board.name}: {name} on the board is {got[0]} B {got[1]}, expected {len(data)} B {want}"
                )
            results.append(FileResult(name, len(data), want, written=False))
        return results

    def _write(self, name: str, target: str, data: bytes, done: int, total: int) -> None:
        if "/" in name.strip("/"):
            if not self.has_mkdir:
                raise FlashError(f"{self.board.name}: {name}: this board's file system is flat; use a bare file name")
            self._mkdirs(name)
        sent = 0
        try:
            # _hil_k refuses a chunk that arrived short (bytes lost on the link): it is sent again.
            self._run(
                f"_hil_f = open({target!r}, 'wb')\n"
                "def _hil_k(b, n):\n"
                "    if len(b) != n:\n"
                "        raise ValueError('hil: chunk of %d B arrived as %d B' % (n, len(b)))\n"
                "    _hil_f.write(b)\n",
                f"opening {target} for writing",
            )
            for i in range(0, len(data), self.chunk):
                piece = data[i : i + self.chunk]
                self._run(f"_hil_k({piece!r}, {len(piece)})", f"writing {name}")
                sent += len(piece)
                self.progress(done + sent, total)
            self._run("_hil_f.close()\ndel _hil_f, _hil_k", f"closing {target}")
        except FlashError as exc:
            state = f"the previous {name} is kept" if target != name else f"{name} on the board is incomplete"
            cause = str(exc).removeprefix(f"{self.board.name}: ")
            raise FlashError(
                f"{self.board.name}: flashing {name} stopped after {sent} of {len(data)} B ({state}): {cause}"
            ) from None

    def _mkdirs(self, name: str) -> None:
        parts = name.strip("/").split("/")[:-1]
        lead = "/" if name.startswith("/") else ""
        for i in range(1, len(parts) + 1):
            path = lead + "/".join(parts[:i])
            self._run(f"import os\ntry:\n    os.mkdir({path!r})\nexcept OSError:\n    pass", f"creating {path}")
