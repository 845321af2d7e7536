"""Last durations for the scheduler: estimates, merging into the cache file, and never a fault."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pytest import durations
from harness.pytest.durations import Durations


def test_estimates_use_known_durations_and_the_mean_for_new_tests():
    d = Durations(tests={"a[native]": 0.2, "b[native]": 0.4, "c[mps2]": 3.0}, boots={"native": 0.1})
    cost, boot = d.estimates({"native": ["a[native]", "b[native]", "new[native]"], "mps2": ["c[mps2]"]})
    assert cost == {"a[native]": 0.2, "b[native]": 0.4, "new[native]": 1.2, "c[mps2]": 3.0}
    assert boot == {"native": 0.1, "mps2": 0.1}  # an unknown board's boot: the mean of the known


def test_with_nothing_known_every_test_and_boot_counts_one():
    cost, boot = Durations(boots={"native": 0.1}).estimates({"native": ["a[native]"], "mps2": ["c[mps2]"]})
    assert cost == {"a[native]": 1.0, "c[mps2]": 1.0}
    assert boot == {"native": 1.0, "mps2": 1.0}


def test_save_merges_with_earlier_runs_and_keeps_the_newest(tmp_path, monkeypatch):
    monkeypatch.setattr(durations, "MAX_TESTS", 3)
    path = tmp_path / "ci" / "durations.json"
    durations.save(path, {"a": 1.0, "b": 2.0}, {"native": 0.1}, now=100.0)
    durations.save(path, {"c": 3.0, "a": 1.5}, {"mps2": 0.2}, now=200.0)
    d = durations.load(path)
    assert d.tests == {"a": 1.5, "b": 2.0, "c": 3.0}
    assert d.boots == {"native": 0.1, "mps2": 0.2}
    durations.save(path, {"d": 4.0}, {}, now=300.0)
    assert set(durations.load(path).tests) == {"a", "c", "d"}  # b, measured longest ago, dropped
    assert not list(path.parent.glob(".durations-*"))  # written through a temporary file, renamed
    assert durations.load(None) == Durations()  # switched off


def test_a_garbled_or_foreign_file_means_count_based_and_is_replaced(tmp_path):
    path = tmp_path / durations.FILE
    for junk in ("{not json", '["a list"]', '{"tests": {"a": "x"}, "boots": {}}', '{"tests": 5}'):
        path.write_text(junk)
        assert durations.load(path) == Durations()
        durations.save(path, {"a": 1.0}, {})
        assert json.loads(path.read_text())["tests"]["a"][0] == 1.0


def test_an_unwritable_place_never_fails_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = blocker / "cache" / durations.FILE  # a path under a file: ENOTDIR
    durations.save(path, {"a": 1.0}, {"native": 0.1})
    assert durations.load(path) == Durations()


def test_where_durations_live(tmp_path, monkeypatch):
    from types import SimpleNamespace

    def config(setting: str) -> SimpleNamespace:
        return SimpleNamespace(stash={}, getoption=lambda name, default=None: setting)

    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))
    assert durations.durations_path(config("")) == tmp_path / "cache" / durations.FILE
    assert durations.durations_path(config("~/ci/d.json")) == Path.home() / "ci" / "d.json"
    assert durations.durations_path(config("off")) is None


def test_the_recorder_sums_a_board_tests_phases_and_notes_its_boot():
    from types import SimpleNamespace

    recorder = durations.DurationRecorder(Path("unused.json"))
    props = [("board", "native"), ("boot_seconds", "0.123")]
    for took in (0.5, 1.0, 0.25):  # setup, call, teardown
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid="t[native]", duration=took, user_properties=props))
    recorder.pytest_runtest_logreport(SimpleNamespace(nodeid="plain", duration=9.0, user_properties=[]))
    assert recorder.tests == {"t[native]": 1.75}
    assert recorder.boots == {"native": 0.123}
