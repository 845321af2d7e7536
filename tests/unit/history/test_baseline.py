"""The --baseline REF grammar, resolving it in a real history, and the NEW/KNOWN/FLAKY/FIXED labels."""

from __future__ import annotations

import pytest

from harness.history.baseline import BaselineRef, label_results, parse_ref, resolve
from harness.history.flaky import flaky_tests
from harness.history.recorder import record_run
from harness.history.records import RunInfo, TestResult
from harness.history.store import HistoryError
from tests.unit.history.test_flaky import past


@pytest.mark.parametrize(("text", "ref"), [
    ("12", BaselineRef("12", run_id=12)),
    ("run:7", BaselineRef("run:7", run_id=7)),
    ("last", BaselineRef("last")),
    ("last~3", BaselineRef("last~3", count=3)),
    ("main", BaselineRef("main", label="main")),
    ("main~5", BaselineRef("main~5", label="main", count=5)),
    ("feature/x~2", BaselineRef("feature/x~2", label="feature/x", count=2)),
    ("label:last", BaselineRef("label:last", label="last")),
    ("label:2024", BaselineRef("label:2024", label="2024")),
])  # fmt: skip
def test_refs_parse(text, ref):
    assert parse_ref(text) == ref


@pytest.mark.parametrize("text", ["", "main~0", "~2", "main~x", "run:", "a~1~2"])
def test_bad_refs_name_the_grammar(text):
    with pytest.raises(HistoryError, match="write a run id, run:ID, last, last~N, LABEL or LABEL~N"):
        parse_ref(text)


def test_refs_resolve_to_runs(store):
    ids = [record_run(store, RunInfo(started=float(i), label=label), [], [])
           for i, label in enumerate(["main", "dev", "main", "main"])]  # fmt: skip
    assert resolve(store, parse_ref("main")) == [ids[3]]
    assert resolve(store, parse_ref("main~2")) == [ids[3], ids[2]]
    assert resolve(store, parse_ref("main~9")) == [ids[3], ids[2], ids[0]]
    assert resolve(store, parse_ref("last~2")) == [ids[3], ids[2]]
    assert resolve(store, parse_ref(str(ids[1]))) == [ids[1]]
    assert resolve(store, parse_ref("main"), before=ids[3]) == [ids[2]]
    with pytest.raises(HistoryError, match="no run 99 in the history"):
        resolve(store, parse_ref("99"))
    with pytest.raises(HistoryError, match="no earlier run labelled 'release'"):
        resolve(store, parse_ref("release~3"))


def now(nodeid, outcome, digest="d", code="c") -> TestResult:
    return TestResult(nodeid, "native", outcome, code_hash=code, image_digest=digest)


def test_labels_against_one_baseline_run():
    base = [past(1, "passed", "t::new[native]"), past(1, "failed", "t::known[native]"),
            past(1, "error", "t::fixed[native]"), past(1, "passed", "t::ok[native]"),
            past(1, "failed", "t::still_skipped[native]")]  # fmt: skip
    current = [now("t::new[native]", "failed"), now("t::known[native]", "error"), now("t::fixed[native]", "passed"),
               now("t::ok[native]", "passed"), now("t::unseen[native]", "failed"),
               now("t::still_skipped[native]", "skipped"), now("t::xf[native]", "xfailed")]  # fmt: skip
    labels = label_results(current, base, {})
    assert labels == {("t::new[native]", "native"): "NEW", ("t::known[native]", "native"): "KNOWN",
                      ("t::fixed[native]", "native"): "FIXED", ("t::unseen[native]", "native"): "NEW"}  # fmt: skip


def test_flaky_in_history_or_in_the_baseline_runs():
    window = [past(1, "passed", "t::coin[native]"), past(2, "failed", "t::coin[native]")]
    flaky = {(g.nodeid, g.board, g.image_digest, g.code_hash): g for g in flaky_tests(window)}
    base = [past(2, "failed", "t::coin[native]"), past(2, "passed", "t::mixed[native]"),
            past(3, "failed", "t::mixed[native]")]  # fmt: skip
    current = [now("t::coin[native]", "failed"), now("t::mixed[native]", "failed")]
    labels = label_results(current, base, flaky)
    assert labels == {("t::coin[native]", "native"): "FLAKY", ("t::mixed[native]", "native"): "FLAKY"}
    # history's verdict holds for its image and code only: a new image makes the failure KNOWN again
    assert label_results([now("t::coin[native]", "failed", digest="new")], base, flaky) == {
        ("t::coin[native]", "native"): "KNOWN"
    }
