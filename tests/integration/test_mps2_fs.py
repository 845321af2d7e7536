"""The mps2_an385 file system (firmware_c/mps2/hil_flash.c): littlefs on a RAM block device, mounted at
"/" at boot, on the real firmware. It behaves like a device's flash: files survive a soft reset,
``import`` finds modules written to it, statvfs gives the configured size, a full disk is ENOSPC
(not a crash), the harness's file copy (FsFlasher) works on it; a QEMU restart starts it empty."""

from __future__ import annotations

import re
import zlib

import pytest

from harness.board import Board
from harness.config.boards import find_board
from harness.flash.fs import FsFlasher, host_digest
from harness.paths import resource
from tests.conftest import REPO

BLOB = bytes(range(256)) * 20 + b"\x00\r\n\x04\x03 end"  # 5 KiB: more than one 4 KiB block


def configured_kb() -> int:
    text = (resource("firmware_c") / "mps2" / "hil_mpconfigport.h").read_text()
    return int(re.search(r"#define HIL_FS_KB\s+\((\d+)\)", text).group(1))


def write(board: Board, name: str, data: bytes) -> None:
    # closed before the next exec: littlefs commits a file's data when it is closed
    board.exec(f"with open({name!r}, 'wb') as f:\n    f.write({data!r})")


@pytest.fixture(scope="module")
def mps2(tmp_path_factory):
    with Board(find_board("mps2_an385", REPO / "targets"), log_dir=tmp_path_factory.mktemp("mps2")) as board:
        assert board.spec.capabilities.fs, "targets/mps2_an385.toml declares capabilities.fs"
        yield board


def test_files_survive_a_soft_reset(mps2):
    mps2.exec("import os\nos.mkdir('keep')")
    write(mps2, "keep/a.bin", BLOB)
    mps2.soft_reset()
    # mounted again at "/" and the cwd, as at boot, with the same bytes
    assert mps2.eval("__import__('os').getcwd()") == "/"
    assert mps2.eval("[m[1] for m in __import__('vfs').mount()]") == ["/"]
    assert mps2.eval("open('keep/a.bin', 'rb').read()") == BLOB
    mps2.exec("import os\nos.remove('keep/a.bin')\nos.rmdir('keep')")
    assert "keep" not in mps2.eval("__import__('os').listdir('/')")


def test_import_finds_modules_written_to_the_board(mps2):
    mps2.exec("import os\nos.mkdir('lib')")
    write(mps2, "hil_t_mod.py", b"X = 42\n")
    write(mps2, "lib/hil_t_libmod.py", b"def f():\n    return 7\n")
    assert mps2.eval("__import__('hil_t_mod').X") == 42
    assert mps2.eval("__import__('hil_t_libmod').f()") == 7  # sys.path has "/lib", as rp2's
    # after a soft reset the module is compiled again from the file as it is now
    write(mps2, "hil_t_mod.py", b"X = 43\n")
    mps2.soft_reset()
    assert mps2.eval("__import__('hil_t_mod').X") == 43
    mps2.exec("import os\nos.remove('hil_t_mod.py')\nos.remove('lib/hil_t_libmod.py')\nos.rmdir('lib')")


def test_statvfs_gives_the_configured_size(mps2):
    bsize, frsize, blocks, bfree, bavail = mps2.eval("__import__('os').statvfs('/')")[:5]
    assert bsize == frsize == 4096
    assert blocks * bsize == configured_kb() * 1024
    assert 0 < bfree == bavail < blocks  # littlefs keeps its superblock pair


def test_a_full_disk_is_enospc_and_the_file_system_stays_usable(mps2):
    out = mps2.exec(
        "import os\nb = bytes(4096)\nn = 0\nf = open('hil_t_fill', 'wb')\n"
        f"try:\n    while n < 2 * {configured_kb() // 4}:\n        f.write(b)\n        n += 1\n"
        "except OSError as e:\n    print('errno', e.errno)\n"
        "try:\n    f.close()\nexcept OSError:\n    pass\n"
        "print('kb', n * 4)",
        timeout=30,
    )
    assert "errno 28" in out, out  # ENOSPC before twice the configured size was written
    assert int(out.split("kb ")[1]) < configured_kb()
    mps2.exec("import os\nos.remove('hil_t_fill')")
    small = mps2.eval("__import__('hil_fs').roundtrip('hil_t_small', b'still works')")
    assert small == (11, zlib.crc32(b"still works"))
    mps2.exec("import os\nos.remove('hil_t_small')")


def test_the_harness_copies_files_onto_it(mps2):
    files = [("blob.bin", BLOB), ("lib/hil_t_extra.py", b"X = 1\n")]
    flasher = FsFlasher(mps2)
    report = flasher.flash(files)
    assert flasher.kind == "sha256" and flasher.has_rename and flasher.has_mkdir
    assert [f.digest for f in report.files] == [host_digest("sha256", d) for _, d in files]
    assert mps2.eval("open('blob.bin', 'rb').read()") == BLOB
    assert mps2.eval("__import__('hil_t_extra').X") == 1
    assert flasher.flash(files).bytes_written == 0  # already there, unchanged


def test_a_qemu_restart_starts_with_an_empty_file_system(mps2):
    mps2.exec("open('hil_t_gone', 'w').write('x')")
    assert "hil_t_gone" in mps2.eval("__import__('os').listdir('/')")
    mps2.restart()  # power cycle: the RAM, and so the storage, starts zeroed; formatted at boot
    assert mps2.eval("__import__('os').listdir('/')") == []
    assert mps2.eval("__import__('os').getcwd()") == "/"
    assert mps2.eval("open('hil_t_new', 'w').write('y')") == 1
