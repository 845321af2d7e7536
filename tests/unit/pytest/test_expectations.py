"""Expected failures kept in data (suites/*/expected_failures.toml): loading, validation, lookup
per board, and the xfail marks they put on collected board tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.pytest.expectations import FILE, expectation_for, load

QUIET = ("-p", "no:cacheprovider", "-p", "no:labgrid")


def suite(tmp_path: Path, toml: str, name: str = "suite") -> Path:
    """A project (pyproject.toml bounds the lookup) with one suite directory holding ``toml``."""
    (tmp_path / "pyproject.toml").touch()
    directory = tmp_path / name
    directory.mkdir()
    (directory / FILE).write_text(textwrap.dedent(toml))
    return directory / "test_x.py"


EXAMPLE = """
    ["*"]
    test_alpn = "no ALPN anywhere"
    test_both = "everywhere"
    [native]
    test_so_error = "the unix port has no SO_ERROR"
    test_both = "native's own reason"
    ["mps2_an385, mps2_an385_tap"]
    test_msg_peek = "modlwip has no MSG_PEEK"
    [qemu_x86]
    test_timing = { reason = "slirp timing", strict = false }
    test_strict = { reason = "always", strict = true }
    """


def test_lookup_per_board_several_boards_and_every_board(tmp_path):
    test_file = suite(tmp_path, EXAMPLE)
    assert expectation_for(test_file, "native", "test_so_error") == ("the unix port has no SO_ERROR", True)
    assert expectation_for(test_file, "microbit", "test_so_error") is None
    assert expectation_for(test_file, "mps2_an385", "test_msg_peek") == ("modlwip has no MSG_PEEK", True)
    assert expectation_for(test_file, "mps2_an385_tap", "test_msg_peek") == ("modlwip has no MSG_PEEK", True)
    assert expectation_for(test_file, "mps2", "test_msg_peek") is None  # whole names only, not prefixes
    assert expectation_for(test_file, "microbit", "test_alpn") == ("no ALPN anywhere", True)
    assert expectation_for(test_file, "native", "test_both") == ("native's own reason", True)  # board beats "*"
    assert expectation_for(test_file, "microbit", "test_both") == ("everywhere", True)
    assert expectation_for(test_file, "native", "test_unlisted") is None


def test_entries_with_strict_false_may_pass(tmp_path):
    test_file = suite(tmp_path, EXAMPLE)
    assert expectation_for(test_file, "qemu_x86", "test_timing") == ("slirp timing", False)
    assert expectation_for(test_file, "qemu_x86", "test_strict") == ("always", True)


def test_a_file_in_a_parent_directory_counts_up_to_the_project_root(tmp_path):
    (tmp_path / FILE).write_text('["*"]\ntest_outside = "above the project: never read"\n')
    project = tmp_path / "project"
    project.mkdir()
    test_file = suite(project, '["*"]\ntest_parent = "from suites/"\n', name="suites")
    nested = test_file.parent / "net" / "test_y.py"
    nested.parent.mkdir()
    assert expectation_for(nested, "native", "test_parent") == ("from suites/", True)
    assert expectation_for(nested, "native", "test_outside") is None


def test_the_nearest_file_wins(tmp_path):
    test_file = suite(tmp_path, '["*"]\ntest_a = "outer"\ntest_b = "outer b"\n', name="suites")
    inner = test_file.parent / "net"
    inner.mkdir()
    (inner / FILE).write_text('[native]\ntest_a = "inner"\n')
    assert expectation_for(inner / "test_y.py", "native", "test_a") == ("inner", True)
    assert expectation_for(inner / "test_y.py", "native", "test_b") == ("outer b", True)


def test_no_file_no_expectations(tmp_path):
    assert load(tmp_path) == {}


@pytest.mark.parametrize(
    "toml",
    [
        '[native]\ntest_x = 3\n',
        '[native]\ntest_x = ""\n',
        '[native]\ntest_x = ["a"]\n',
        'test_x = "a top-level entry, not in a board section"\n',
        '[native]\ntest_x = { strict = false }\n',
        '[native]\ntest_x = { reason = "", strict = false }\n',
        '[native]\ntest_x = { reason = "r", strict = "no" }\n',
        '[native]\ntest_x = { reason = "r", stirct = false }\n',
    ],
)
def test_bad_entries_are_one_line_config_errors_naming_the_file(tmp_path, toml):
    test_file = suite(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        expectation_for(test_file, "native", "test_x")
    message = str(info.value)
    assert message.startswith(f"{test_file.parent / FILE}: [")
    assert "must map test names to non-empty reason strings" in message and "\n" not in message


def test_invalid_toml_is_a_one_line_config_error(tmp_path):
    test_file = suite(tmp_path, '[native\ntest_x = "y"\n')
    with pytest.raises(ConfigError) as info:
        expectation_for(test_file, "native", "test_x")
    assert str(info.value).startswith(f"{test_file.parent / FILE}: not valid TOML (")
    assert "\n" not in str(info.value)


TESTS = """
import pytest

def test_so_error(board):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_msg_peek(board, n):
    pass

def test_timing(board):
    pass

def test_alpn():  # not a board test: never marked
    pass
"""


def xfails(pytester, boards: str) -> dict[str, tuple[str, bool] | None]:
    pytester.makepyfile(test_x=TESTS)
    pytester.path.joinpath("pyproject.toml").touch()
    items, _ = pytester.inline_genitems(*QUIET, *(f"--board={b}" for b in boards.split(",")))
    marks = {item.name: item.get_closest_marker("xfail") for item in items}
    return {name: (m.kwargs["reason"], m.kwargs["strict"]) if m else None for name, m in marks.items()}


def test_collected_board_tests_get_xfail_marks(pytester, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))
    (pytester.path / FILE).write_text(textwrap.dedent(EXAMPLE))
    assert xfails(pytester, "native,mps2_an385,qemu_x86") == {
        "test_so_error[native]": ("native: the unix port has no SO_ERROR", True),
        "test_so_error[mps2_an385]": None,
        "test_so_error[qemu_x86]": None,
        "test_msg_peek[native-1]": None, "test_msg_peek[native-2]": None,
        "test_msg_peek[mps2_an385-1]": ("mps2_an385: modlwip has no MSG_PEEK", True),
        "test_msg_peek[mps2_an385-2]": ("mps2_an385: modlwip has no MSG_PEEK", True),
        "test_msg_peek[qemu_x86-1]": None, "test_msg_peek[qemu_x86-2]": None,
        "test_timing[native]": None, "test_timing[mps2_an385]": None,
        "test_timing[qemu_x86]": ("qemu_x86: slirp timing", False),
        "test_alpn": None,
    }  # fmt: skip


def test_a_bad_file_stops_the_run_with_one_line(pytester, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))
    (pytester.path / FILE).write_text("[native]\ntest_so_error = 3\n")
    pytester.makepyfile(test_x=TESTS)
    pytester.path.joinpath("pyproject.toml").touch()
    result = pytester.runpytest(*QUIET, "--board=native")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert f"{pytester.path / FILE}: [native] must map test names" in result.stderr.str()
