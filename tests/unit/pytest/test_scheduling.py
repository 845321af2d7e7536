"""Parallel runs over real boards (pytest-xdist, child pytest): scheduling by board, retries of
infrastructure errors on a fresh board, quarantine of a board that keeps failing."""

from __future__ import annotations

from collections import Counter


def test_scheduler_finds_the_board_in_test_ids():
    from harness.pytest.scheduling import board_of_nodeid

    names = ["native", "esp32", "esp32-bench-1"]
    assert board_of_nodeid("s/test_a.py::test_x[native]", names) == "native"
    assert board_of_nodeid("s/test_a.py::T::test_x[3-esp32-bench-1]", names) == "esp32-bench-1"
    assert board_of_nodeid("s/test_a.py::test_x[esp32-7]", names) == "esp32"
    assert board_of_nodeid("s/test_a.py::test_x", names) is None
    assert board_of_nodeid("s/test_a.py::test_x[other]", names) is None




def test_boards_in_finds_every_board_of_a_pairing():
    from harness.pytest.scheduling import boards_in

    names = ["mps2_an385_tap", "qemu_x86_tap", "native", "esp32", "esp32-bench-1"]
    assert boards_in("native", names) == ["native"]
    assert boards_in("3-native", names) == ["native"]
    assert boards_in("esp32-bench-1", names) == ["esp32-bench-1"]
    assert boards_in("mps2_an385_tap-qemu_x86_tap", names) == ["mps2_an385_tap", "qemu_x86_tap"]
    assert boards_in("qemu_x86_tap-qemu_x86_tap", names) == ["qemu_x86_tap", "qemu_x86_tap"]
    assert boards_in("other", names) == []


def _ids(board: str, n: int) -> list[str]:
    return [f"suite.py::test_{i}[{board}]" for i in range(n)]


def _runs(units: dict[str, tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(board, chunk, tests) per unit, in the plan's order."""
    sizes = Counter(units.values())
    return [(board, chunk, sizes[board, chunk]) for board, chunk in dict.fromkeys(units.values())]


def test_a_cheap_board_past_a_workers_share_is_cut_devices_stay_whole():
    from harness.pytest.scheduling import work_units

    names = ["mps2_an385", "esp32", "native"]
    nodeids = [*_ids("mps2_an385", 16), *_ids("esp32", 5), *_ids("native", 3), "suite.py::test_plain"]
    units = work_units(nodeids, names, 2, splittable=lambda b: b != "esp32")
    # a share: (24 tests + 3 boots + 1 boot for a cut) / 2 = 14; mps2 fills worker 0's (13 tests
    # + its boot), the other 3 go to worker 1 beside the device and native
    assert _runs(units) == [("mps2_an385", 0, 13), ("mps2_an385", 1, 3), ("esp32", 0, 5), ("native", 0, 3)]
    assert [units[n] for n in _ids("mps2_an385", 16)] == [("mps2_an385", 0)] * 13 + [("mps2_an385", 1)] * 3
    assert "suite.py::test_plain" not in units  # not a board test: xdist's own scope
    big_device = work_units([*_ids("esp32", 12), *_ids("native", 3)], names, 2, splittable=lambda b: b != "esp32")
    assert {chunk for _, chunk in big_device.values()} == {0}  # one device: one worker, however big
    one = work_units(nodeids, names, 1, splittable=lambda b: True)
    assert {chunk for _, chunk in one.values()} == {0}  # one worker: whole boards
    alone = work_units(_ids("native", 9), ["native"], 3, splittable=lambda b: True)
    assert [n for _, _, n in _runs(alone)] == [3, 3, 3]  # one board, three workers: three runs
    few = work_units(_ids("native", 1), ["native"], 4, splittable=lambda b: True)
    assert set(few.values()) == {("native", 0)}  # never more units than tests


def test_a_split_must_save_more_than_a_boot():
    """Two boards of 6 tests on two workers balance whole; 7 + 5 would save only a test's worth."""
    from harness.pytest.scheduling import work_units

    names = ["mps2_an385", "native"]
    even = work_units([*_ids("mps2_an385", 6), *_ids("native", 6)], names, 2, splittable=lambda b: True)
    assert {chunk for _, chunk in even.values()} == {0}
    near = work_units([*_ids("mps2_an385", 7), *_ids("native", 5)], names, 2, splittable=lambda b: True)
    assert {chunk for _, chunk in near.values()} == {0}


def test_three_equal_boards_on_two_workers_share_the_third():
    """The smoke suite on three boards and two workers: as whole boards one worker runs two."""
    from harness.pytest.scheduling import work_units

    nodeids = [*_ids("mps2_an385", 17), *_ids("microbit", 17), *_ids("native", 17)]
    units = work_units(nodeids, ["mps2_an385", "microbit", "native"], 2, splittable=lambda b: True)
    assert _runs(units) == [("mps2_an385", 0, 17), ("microbit", 0, 17), ("native", 0, 9), ("native", 1, 8)]


def test_the_plan_balances_by_last_durations_not_by_count():
    """The same number of tests, but one board's take ten times as long: it is the one cut."""
    from harness.pytest.durations import Durations
    from harness.pytest.scheduling import work_units

    names = ["mps2_an385", "microbit", "native"]
    nodeids = [*_ids("microbit", 10), *_ids("native", 10), *_ids("mps2_an385", 10)]
    times = {**dict.fromkeys(_ids("native", 10), 0.1), **dict.fromkeys(_ids("mps2_an385", 10), 0.1),
             **dict.fromkeys(_ids("microbit", 10), 1.0)}  # fmt: skip
    durations = Durations(tests=times, boots=dict.fromkeys(names, 0.1))
    units = work_units(nodeids, names, 2, splittable=lambda b: True, last=durations)
    # share: (12 s of tests + 0.4 s of boots) / 2 = 6.2 s; microbit's 10 s is cut after 6 tests
    assert _runs(units) == [("microbit", 0, 6), ("microbit", 1, 4), ("native", 0, 10), ("mps2_an385", 0, 10)]
    by_count = work_units(nodeids, names, 2, splittable=lambda b: True)
    assert ("microbit", 1) not in by_count.values()  # by count alone the boards look equal:
    assert ("mps2_an385", 1) in by_count.values()  # the last one placed is cut


def test_a_board_with_a_pairing_is_not_split():
    from harness.pytest.scheduling import work_units

    names = ["mps2_an385_tap", "qemu_x86_tap"]
    nodeids = [*_ids("mps2_an385_tap", 40), "multi.py::test_echo[mps2_an385_tap-qemu_x86_tap]"]
    units = work_units(nodeids, names, 2, splittable=lambda b: True)
    assert set(units.values()) == {("mps2_an385_tap", 0)}


def test_units_go_out_in_the_plans_order_a_boards_chunks_in_a_row():
    """A worker must never come back to a board it left: that would boot it again."""
    from harness.pytest.scheduling import unit_order, work_units

    nodeids = [*_ids("native", 2), *_ids("mps2_an385", 13), *_ids("microbit", 13)]
    units = work_units(nodeids, ["native", "mps2_an385", "microbit"], 3, splittable=lambda b: True)
    scopes = [*dict.fromkeys(f"board:{b}#{c}" for b, c in units.values()), "suite.py::x"]
    # xdist's own order (largest unit first) would interleave boards' chunks
    by_size = sorted(scopes, key=lambda s: -sum(1 for b, c in units.values() if f"board:{b}#{c}" == s))
    assert by_size != sorted(by_size, key=unit_order(units))
    assert sorted(by_size, key=unit_order(units)) == [
        "board:mps2_an385#0", "board:mps2_an385#1", "board:microbit#0", "board:microbit#1",
        "board:native#0", "suite.py::x",
    ]  # fmt: skip


def test_a_dist_mode_counts_as_chosen_only_when_named(monkeypatch):
    """xdist turns "-n 2" into --dist load, and under `python -m pytest` its hook runs before ours
    (plugin order follows sys.path): whether the user chose a mode is read from what they wrote."""
    from types import SimpleNamespace

    from harness.pytest.scheduling import dist_chosen

    def config(*args: str, addopts: tuple[str, ...] = ()) -> SimpleNamespace:
        return SimpleNamespace(invocation_params=SimpleNamespace(args=args), getini=lambda name: list(addopts))

    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    assert not dist_chosen(config("-n", "2", "suites"))
    assert dist_chosen(config("-n", "2", "--dist", "loadfile"))
    assert dist_chosen(config("-n2", "--dist=loadgroup"))
    assert dist_chosen(config("-n", "2", addopts=("--dist=loadscope",)))
    monkeypatch.setenv("PYTEST_ADDOPTS", "-q --dist load")
    assert dist_chosen(config("-n", "2"))
