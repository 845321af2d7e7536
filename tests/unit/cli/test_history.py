"""`hil history runs|flaky|show` in-process on a real SQLite history (harness/cli/history.py);
the ``hil`` fixture is tests/unit/cli/conftest.py's."""

from __future__ import annotations

import pytest

from harness.history.recorder import record_run
from harness.history.records import RunInfo, TestResult
from harness.history.store import open_store, resolve_url


@pytest.fixture
def out_dir(tmp_path):
    store = open_store(resolve_url("", tmp_path))
    try:
        for i, coin in enumerate(["passed", "failed", "passed", "failed"]):
            results = [TestResult("s/t.py::test_coin[native]", "native", coin, 0.2, code_hash="c", image_digest="d",
                                  first_error="assert [1] == 0" if coin == "failed" else None),
                       TestResult("s/t.py::test_ok[native]", "native", "passed", 0.1, code_hash="c", image_digest="d")]
            record_run(store, RunInfo(started=1.8e9 + i, label="main", git_commit="0123456789abcdef", git_dirty=i == 3,
                                      exit_status=1 if coin == "failed" else 0), [], results)  # fmt: skip
    finally:
        store.close()
    return tmp_path


def test_runs_lists_the_newest_first_with_counts(hil, out_dir):
    status, out, _ = hil("history", "runs", "--out", str(out_dir), "-n", "2")
    assert status == 0
    lines = [line for line in out.splitlines() if "main" in line]
    assert len(lines) == 2 and lines[0].split("│")[1].strip() == "4" and "0123456789+dirty" in lines[0]


def test_flaky_names_the_coin_with_its_flip_rate(hil, out_dir):
    status, out, _ = hil("history", "flaky", "--out", str(out_dir))
    assert status == 0
    assert "s/t.py::test_coin[native]" in out and "1.00" in out and "PFPF" in out and "test_ok" not in out
    status, out, _ = hil("history", "flaky", "--out", str(out_dir), "--window", "1")
    assert status == 0 and "no flaky test in the last 1 runs" in out


def test_show_prints_the_last_outcomes_per_board(hil, out_dir):
    status, out, _ = hil("history", "show", "test_coin", "--out", str(out_dir), "-n", "3")
    assert status == 0
    assert "s/t.py::test_coin[native] on native: FPF" in out and "assert [1] == 0" in out  # markup kept literal


def test_no_history_is_one_line(hil, tmp_path):
    status, _, err = hil("history", "flaky", "--out", str(tmp_path / "none"))
    assert status == 2 and err.strip().count("\n") == 0 and "no run history here" in err
    status, _, err = hil("history", "runs", "--history", "off")
    assert status == 2 and "history is switched off" in err
