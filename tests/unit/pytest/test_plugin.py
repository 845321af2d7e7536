"""The pytest plugin without boards: which boards a run parametrizes over (collection only)."""

from __future__ import annotations

import shutil

from tests.conftest import REPO


def _run(pytester, *args):
    """A child pytest without labgrid's own plugin (it is slow to load and not used here)."""
    return pytester.runpytest_subprocess("-p", "no:labgrid", *args)

def test_no_board_selected_uses_default_boards(pytester):
    targets = pytester.path / "targets"
    targets.mkdir()
    for name in ("native", "microbit", "mps2_an385_tap"):
        shutil.copy(REPO / "targets" / f"{name}.toml", targets)
    pytester.makepyfile(test_one="def test_x(board):\n    pass\n")
    result = _run(pytester, f"--targets={targets}", "--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "test_x[microbit]" in out and "test_x[native]" in out
    assert "mps2_an385_tap" not in out  # not a default board
    result = _run(pytester, f"--targets={targets}", "--board=native", "--collect-only", "-q",
                                           "-p", "no:cacheprovider")  # fmt: skip
    assert "test_x[native]" in result.stdout.str() and "microbit" not in result.stdout.str()


def test_lab_devices_are_boards_with_hil_lab(pytester):
    """--hil-lab FILE makes its devices selectable (by name or tag), with --hil-port's resolved ports."""
    lab = pytester.path / "lab-t.toml"
    lab.write_text('[lab]\nname = "t"\n[[device]]\nname = "d1"\nport = "/dev/ttyHILNONE"\ntags = ["rp2040"]\n'
                   "capabilities = { fs = true }\n")  # fmt: skip
    pytester.makepyfile(test_one="def test_x(board):\n    pass\n")
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", f"--hil-lab={lab}"]
    result = _run(pytester, *args, "--hil-port", "d1=rfc2217://h:1", "--board", "tag:rp2040")
    assert "test_x[tag:rp2040]" in result.stdout.str(), result.stdout.str()
    result = _run(pytester, *args, "--board", "d1")
    assert "test_x[d1]" in result.stdout.str()
    result = _run(pytester, "-p", "no:cacheprovider", "--hil-port", "d1=/dev/x", "--board", "d1")
    assert "--hil-port names a device of a lab file: add --hil-lab FILE" in result.stderr.str()
    result = _run(pytester, *args, "--hil-port", "zz=/dev/x", "--board", "d1")
    assert "--hil-port zz: no such device in" in result.stderr.str()
