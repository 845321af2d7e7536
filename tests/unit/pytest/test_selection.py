"""Which boards a run uses, and the capability skips decided at collection (no board is started)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.pytest.selection import selected_boards
from tests.conftest import write_target

QUIET = ("-p", "no:cacheprovider", "-p", "no:labgrid")
PROCESS = '[image]\nbuilder = "none"\n[launch]\nkind = "process"\ncommand = ["true"]\n'


def config_with(boards: list[str]) -> SimpleNamespace:
    return SimpleNamespace(getoption={"board": boards}.__getitem__, stash=pytest.Stash())


def test_board_option_wins_and_repeats_are_dropped_in_order(targets, monkeypatch):
    monkeypatch.setenv("HIL_BOARDS", "from_env")
    assert selected_boards(config_with(["b", "a", "b", "tag:x", "a"])) == ["b", "a", "tag:x"]


def test_hil_boards_environment_when_no_board_option(targets, monkeypatch):
    monkeypatch.setenv("HIL_BOARDS", "native,,microbit,native")
    assert selected_boards(config_with([])) == ["native", "microbit"]


def test_default_boards_are_the_targets_marked_default(targets):
    write_target(targets, "alpha", PROCESS)
    write_target(targets, "beta", "default = false\n" + PROCESS)
    write_target(targets, "gamma", PROCESS)
    (targets / "lab-bench.toml").write_text('[lab]\nname = "bench"\n')  # a lab file is not a board
    assert selected_boards(config_with([])) == ["alpha", "gamma"]


def test_a_broken_target_file_still_yields_every_files_name(targets):
    """So the error lands on each test of that board instead of the run silently choosing none."""
    write_target(targets, "alpha", PROCESS)
    write_target(targets, "beta", "default = false\n" + PROCESS)
    (targets / "broken.toml").write_text("[board\n")
    assert selected_boards(config_with([])) == ["alpha", "beta", "broken"]


def test_no_target_files_no_boards(targets):
    assert selected_boards(config_with([])) == []


CAPS_TESTS = """
import pytest

def test_any(board):
    pass

@pytest.mark.requires("net")
def test_net(board):
    pass

@pytest.mark.requires("net", "tls")
def test_tls(board):
    pass

@pytest.mark.requires("can")
@pytest.mark.requires("fs")
def test_can_fs(board):
    pass

@pytest.mark.boards("netboard", "other")
def test_only(board):
    pass

@pytest.mark.requires("can")
def test_no_board():
    pass
"""


def skips(pytester, *args: str) -> dict[str, list[str]]:
    """Collect (only) and return each item's skip reasons."""
    pytester.makepyfile(test_caps=CAPS_TESTS)
    items, _ = pytester.inline_genitems(*QUIET, *args)
    return {item.name: [m.kwargs["reason"] for m in item.iter_markers("skip")] for item in items}


def test_capability_skips_are_decided_at_collection(pytester, targets):
    write_target(targets, "netboard", PROCESS + "[capabilities]\nnet = true\ntls = true\nfs = true\n")
    write_target(targets, "bare", PROCESS)
    got = skips(pytester, "--board=netboard", "--board=bare")
    assert got == {
        "test_any[netboard]": [], "test_any[bare]": [],
        "test_net[netboard]": [], "test_net[bare]": ["board bare lacks capability: net"],
        "test_tls[netboard]": [], "test_tls[bare]": ["board bare lacks capability: net, tls"],
        "test_can_fs[netboard]": ["board netboard lacks capability: can"],
        "test_can_fs[bare]": ["board bare lacks capability: fs", "board bare lacks capability: can"],
        "test_only[netboard]": [], "test_only[bare]": ["only for boards netboard, other"],
        "test_no_board": [],  # not a board test: the requires marker alone decides nothing
    }  # fmt: skip


def test_a_capability_skip_names_the_boards_of_the_same_build_that_run_it(pytester, targets):
    """mps2_an385 skips the tap cases, which run on mps2_an385_tap (same image, same machine)."""
    image = '[image]\nbuilder = "mps2_micropython"\n[launch]\nkind = "qemu"\n'
    emu = image + 'machine = "mps2-an385"\n'
    write_target(targets, "emu", emu)
    write_target(targets, "emu_net", "default = false\n" + emu + "[capabilities]\nnet = true\n")
    other = image + 'machine = "mps2-an386"\n[capabilities]\nnet = true\n'
    write_target(targets, "other_net", "default = false\n" + other)
    got = skips(pytester, "--board=emu", "--board=emu_net")
    assert got["test_net[emu]"] == ["board emu lacks capability: net (runs on emu_net)"]
    assert got["test_tls[emu]"] == ["board emu lacks capability: net, tls"]  # emu_net has no tls either


def test_a_tag_needs_the_capability_on_every_board_it_may_lease(pytester, targets):
    write_target(targets, "one", 'tags = ["pool"]\n' + PROCESS + "[capabilities]\nnet = true\ntls = true\n")
    write_target(targets, "two", 'tags = ["pool"]\n' + PROCESS + "[capabilities]\nnet = true\n")
    got = skips(pytester, "--board=tag:pool")
    assert got["test_net[tag:pool]"] == []
    assert got["test_tls[tag:pool]"] == ["board tag:pool lacks capability: tls"]  # "two" has no tls
    assert got["test_only[tag:pool]"] == ["only for boards netboard, other"]  # neither is listed


def test_an_unknown_board_is_not_skipped_at_collection(pytester, targets):
    """A board that cannot be looked up is left to the board fixture, which reports the error on each test."""
    (targets / "broken.toml").write_text("[board\n")
    got = skips(pytester, "--board=nosuch", "--board=broken", "--board=tag:nothing")
    assert all(reasons == [] for reasons in got.values()), got
    assert "test_net[nosuch]" in got and "test_net[broken]" in got and "test_net[tag:nothing]" in got


def test_board_tests_are_parametrized_once_per_board_with_the_board_as_id(pytester, targets):
    write_target(targets, "alpha", PROCESS)
    got = skips(pytester, "--board=alpha", "--board=tag:x", "--board=alpha")
    assert sorted(n for n in got if n.startswith("test_any")) == ["test_any[alpha]", "test_any[tag:x]"]
