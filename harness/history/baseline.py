"""Baselines: which earlier runs a run is compared with, and the label of each test against them.

The REF grammar (``hil run --baseline REF``):

    ID | run:ID        that run (ids: ``hil history runs``)
    last              the newest run recorded before this one
    last~N            the N newest runs before this one
    LABEL | label:LABEL      the newest run labelled LABEL (``--hil-label``, default the git branch;
                             label: for a label that is all digits, holds a colon or is "last")
    LABEL~N | label:LABEL~N  the N newest runs labelled LABEL ("the last N runs of main": main~N)

Labels (only problems and former problems get one):

    NEW    failed/error now; passed in the baseline or absent from it: a regression
    KNOWN  failed/error now and in the baseline
    FLAKY  failed/error now, and history calls it flaky (same board, image and test code), or the
           baseline runs disagree (it passed in one and failed in another)
    FIXED  passes now; failed in every baseline run that ran it"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.history.flaky import Flaky
from harness.history.queries import recent_run_ids, run_exists
from harness.history.records import PROBLEMS, PastResult, TestResult
from harness.history.store import HistoryError, Store

NEW, KNOWN, FLAKY, FIXED = "NEW", "KNOWN", "FLAKY", "FIXED"
LABELS = (NEW, KNOWN, FLAKY, FIXED)
_REF = re.compile(r"^(?:(?P<run>run:\d+|\d+)|(?:label:(?P<any>[^~]+?)|(?P<label>[^~:]+?))(?:~(?P<count>\d+))?)$")


@dataclass(frozen=True)
class BaselineRef:
    text: str
    run_id: int | None = None
    label: str | None = None  # None with run_id None: any label (``last``)
    count: int = 1


def parse_ref(text: str) -> BaselineRef:
    """A REF as the grammar above says; HistoryError naming the grammar when it is none of them."""
    m = _REF.match(text.strip())
    if not m or (m["count"] is not None and int(m["count"]) < 1):
        raise HistoryError(f"--baseline {text!r}: write a run id, run:ID, last, last~N, LABEL or LABEL~N (N >= 1)")
    if m["run"]:
        return BaselineRef(text, run_id=int(m["run"].removeprefix("run:")))
    count = int(m["count"] or 1)
    if m["any"] is not None:  # label:NAME: any name, even one that looks like a run id or "last"
        return BaselineRef(text, label=m["any"], count=count)
    return BaselineRef(text, label=None if m["label"] == "last" else m["label"], count=count)


def resolve(store: Store, ref: BaselineRef, before: int | None = None) -> list[int]:
    """The run ids ``ref`` names (older than run ``before``); HistoryError when there are none."""
    if ref.run_id is not None:
        if not run_exists(store, ref.run_id):
            raise HistoryError(f"--baseline {ref.text}: no run {ref.run_id} in the history (see `hil history runs`)")
        return [ref.run_id]
    ids = recent_run_ids(store, ref.count, label=ref.label, before=before)
    if not ids:
        what = f"labelled {ref.label!r}" if ref.label is not None else "recorded"
        raise HistoryError(f"--baseline {ref.text}: no earlier run {what} in the history (runs are labelled "
                           "with --hil-label, by default the git branch)")  # fmt: skip
    return ids


def label_results(
    current: list[TestResult], baseline: list[PastResult], flaky: dict[tuple, Flaky]
) -> dict[tuple[str, str], str]:
    """(nodeid, board) -> label, for the tests of ``current`` that get one. ``flaky``: the groups
    history calls flaky, keyed (nodeid, board, image_digest, code_hash)."""
    before: dict[tuple[str, str], list[str]] = {}
    for r in baseline:
        before.setdefault((r.nodeid, r.board), []).append(r.outcome)
    labels = {}
    for r in current:
        base = before.get(r.key, [])
        failed_before = any(o in PROBLEMS for o in base)
        passed_before = "passed" in base
        if r.outcome in PROBLEMS:
            if (r.nodeid, r.board, r.image_digest, r.code_hash) in flaky or (failed_before and passed_before):
                labels[r.key] = FLAKY
            elif failed_before:
                labels[r.key] = KNOWN
            else:
                labels[r.key] = NEW
        elif r.outcome == "passed" and failed_before and not passed_before:
            labels[r.key] = FIXED
    return labels
