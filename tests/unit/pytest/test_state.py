"""What the plugin's parts share: the board of a test item, the per-process run state."""

from __future__ import annotations

from types import SimpleNamespace

from harness.pytest.state import RunState, board_param


def test_board_param_is_the_items_board_parameter():
    assert board_param(SimpleNamespace(callspec=SimpleNamespace(params={"board": "native", "n": 3}))) == "native"
    assert board_param(SimpleNamespace(callspec=SimpleNamespace(params={"n": 3}))) is None  # parametrized, no board
    assert board_param(SimpleNamespace()) is None  # not parametrized at all (no callspec attribute)


def test_board_param_of_collected_items(pytester, monkeypatch):
    """The plugin parametrizes ``board``; other parameters and unparametrized tests are left alone."""
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))  # no target files: nothing is looked up
    monkeypatch.setenv("HIL_BOARDS", "tag:esp32,native")
    pytester.makepyfile(test_p="""
        import pytest

        @pytest.mark.parametrize("n", [1])
        def test_on_board(board, n):
            pass

        @pytest.mark.parametrize("n", [1])
        def test_plain(n):
            pass
        """)
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider", "-p", "no:labgrid")
    assert {item.name: board_param(item) for item in items} == {
        "test_on_board[tag:esp32-1]": "tag:esp32", "test_on_board[native-1]": "native", "test_plain[1]": None,
    }  # fmt: skip


def test_run_state_starts_empty_and_is_not_shared():
    a, b = RunState(), RunState()
    assert a.infra_errors == {} and a.quarantined == {}
    a.infra_errors["native"] = 1
    a.quarantined["native"] = "why"
    assert b.infra_errors == {} and b.quarantined == {}  # default_factory: no dict shared between runs
